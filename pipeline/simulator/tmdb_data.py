"""The simulated TMDB world: a fixed movie catalogue, its daily popularity, and the movie payloads built from it.

Everything here is pure (no aiohttp, no I/O) and a function of its arguments only, so a fixed simulator clock
gives byte-identical responses.

TMDB model (shared/reference/tmdb.md): a fixed catalogue of theatrical releases from 2020-01-01 to
2027-12-31. Each day has 0-5 Korean theatrical releases plus a few releases elsewhere; ids are derived from the
day index. Only ``popularity`` (and therefore the ranking) depends on the clock's day.
"""

from __future__ import annotations

import functools
import math
import random
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from pipeline.simulator import vocab
from pipeline.simulator.world import KST, mix32

# ================================================================================================ movies

CATALOGUE_START: Final = date(2020, 1, 1)
CATALOGUE_END: Final = date(2027, 12, 31)
ID_BASE: Final = 700_000
ID_STRIDE: Final = 16  # ids per catalogue day
PAGE_SIZE: Final = 20


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    logo_path: str | None
    name: str
    origin_country: str


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    name_en: str
    name_ko: str
    poster_path: str | None
    backdrop_path: str | None


@dataclass(frozen=True, slots=True)
class Movie:
    """One catalogue movie. ``None`` translations mean "untranslated" (fall back as TMDB does)."""

    id: int
    kr_release: date | None  # None: no Korean theatrical release
    kr_rerelease: date | None
    primary_release: date | None  # None: details show release_date ""
    original_language: str
    original_title: str
    title_en: str | None
    title_ko: str | None
    overview_en: str
    overview_ko: str
    tagline_en: str
    tagline_ko: str
    genre_ids: tuple[int, ...]
    runtime: int
    budget: int
    revenue: int
    homepage: str
    imdb_id: str | None
    poster_path: str | None
    backdrop_path: str | None
    companies: tuple[Company, ...]
    countries: tuple[str, ...]
    spoken_languages: tuple[str, ...]
    origin_country: tuple[str, ...]
    vote_count: int
    vote_average: float | int
    pop_base: float
    fresh: bool  # a very new entry whose popularity is still written as integer 0
    collection: Collection | None
    certification: str

    def kr_dates(self) -> tuple[date, ...]:
        return tuple(d for d in (self.kr_release, self.kr_rerelease) if d is not None)

    def all_dates(self) -> tuple[date, ...]:
        return tuple(d for d in (self.kr_release, self.kr_rerelease, self.primary_release) if d is not None)


def _image(rng: random.Random, suffix: str = ".jpg") -> str:
    return "/" + "".join(rng.choices(vocab.IMAGE_ALPHABET, k=27)) + suffix


_LANG_INDEX: Final = {"en": 0, "ko": 1, "ja": 2, "fr": 3, "zh": 4, "es": 5, "de": 6, "it": 7}


def _title(lang: str, adj: tuple[str, ...], noun: tuple[str, ...], noun2: tuple[str, ...], pattern: int) -> str:
    i = _LANG_INDEX[lang]
    a, n, m = adj[i], noun[i], noun2[i]
    if lang == "en":
        return (f"The {a} {n}", f"{a} {n}", f"The {n}", f"{n} of the {m}")[pattern]
    if lang == "ko":
        return (f"{a} {n}", f"{a} {n}", n, f"{m}의 {n}")[pattern]
    if lang == "ja":
        return (f"{a}{n}", f"{a}{n}", n, f"{m}の{n}")[pattern]
    if lang == "zh":
        return (f"{a}{n}", f"{a}{n}", n, f"{m}之{n}")[pattern]
    if lang == "fr":
        return (f"{n} {a.lower()}", f"{n} {a.lower()}", f"Le {n}", f"{n} de {m}")[pattern]
    if lang == "es":
        return (f"El {n} {a.lower()}", f"{n} {a.lower()}", f"El {n}", f"{n} del {m}")[pattern]
    if lang == "de":
        return (f"Der {a} {n}", f"{a} {n}", f"Der {n}", f"{n} der {m}")[pattern]
    return (f"Il {n} {a.lower()}", f"{n} {a.lower()}", f"Il {n}", f"{n} di {m}")[pattern]


def _pick_language(rng: random.Random, korean_release: bool) -> str:
    weights = [weight if (code != "ko" or korean_release) else 1 for code, weight, _ in vocab.LANGUAGES]
    return rng.choices([code for code, _, _ in vocab.LANGUAGES], weights=weights)[0]


def _movie(rng: random.Random, day_index: int, slot: int, day: date, korean_release: bool) -> Movie:
    movie_id = ID_BASE + day_index * ID_STRIDE + slot
    lang = _pick_language(rng, korean_release)
    country = next(c for code, _, c in vocab.LANGUAGES if code == lang)
    if lang == "en" and rng.random() < 0.2:
        country = rng.choice(("GB", "CA"))
    elif lang == "zh" and rng.random() < 0.3:
        country = "HK"

    # Release dates.
    if korean_release:
        kr_release: date | None = day
        roll = rng.random()
        if lang == "ko" or roll < 0.3:
            primary: date | None = day
        elif roll < 0.7:
            primary = day - timedelta(days=rng.randint(1, 30))
        elif roll < 0.97:
            primary = day - timedelta(days=rng.randint(31, 220))
        else:
            primary = day + timedelta(days=rng.randint(1, 7))  # Korea first
        rerelease = day + timedelta(days=rng.randint(365, 1500)) if rng.random() < 0.015 else None
        if rerelease is not None and rerelease > CATALOGUE_END:
            rerelease = None
    else:
        kr_release, rerelease, primary = None, None, day
    if rng.random() < 0.02:
        primary = None

    # Titles: one concept, rendered per language.
    adj = rng.choice(vocab.TITLE_ADJECTIVES)
    noun, noun2 = rng.sample(vocab.TITLE_NOUNS, 2)
    pattern = rng.randrange(4)
    collection: Collection | None = None
    sequel = ""
    if rng.random() < 0.08:
        sequel = f" {rng.randint(2, 4)}"
    original_title = _title(lang, adj, noun, noun2, pattern) + sequel
    title_en: str | None = original_title if lang == "en" else (_title("en", adj, noun, noun2, pattern) + sequel)
    if lang != "en" and rng.random() < 0.1:
        title_en = None
    title_ko: str | None = original_title if lang == "ko" else _title("ko", adj, noun, noun2, pattern) + sequel
    if lang != "ko" and rng.random() < 0.2:
        title_ko = None
    if sequel:
        base_en = _title("en", adj, noun, noun2, pattern)
        base_ko = _title("ko", adj, noun, noun2, pattern)
        collection = Collection(
            id=500_000 + day_index * ID_STRIDE + slot,
            name_en=f"{base_en} Collection",
            name_ko=f"{base_ko} 시리즈" if title_ko is not None else f"{base_en} Collection",
            poster_path=_image(rng) if rng.random() < 0.9 else None,
            backdrop_path=_image(rng) if rng.random() < 0.8 else None,
        )

    role = rng.choice(vocab.OVERVIEW_ROLES)
    event = rng.choice(vocab.OVERVIEW_EVENTS)
    goal = rng.choice(vocab.OVERVIEW_GOALS)
    deadline = rng.choice(vocab.OVERVIEW_DEADLINES)
    overview_en = (
        f"When {role[0]} {event[0]}, a race begins to {goal[0]} before {deadline[0]}." if rng.random() >= 0.03 else ""
    )
    overview_ko = f"{role[1]}는 {event[1]}, {deadline[1]} 전에 {goal[1]} 위해 모든 것을 건다."
    if title_ko is None or rng.random() < 0.06:
        overview_ko = ""
    tagline = rng.choice(vocab.TAGLINES)
    tagline_en = tagline[0] if rng.random() < 0.55 else ""
    tagline_ko = tagline[1] if tagline_en and title_ko is not None and rng.random() < 0.7 else ""

    genres: list[int] = []
    if rng.random() >= 0.02:
        wanted = rng.choice((1, 2, 2, 3, 3))
        while len(genres) < wanted:
            pool = vocab.GENRE_LEANINGS[lang] if rng.random() < 0.6 else tuple(vocab.GENRES)
            genre = rng.choice(pool)
            if genre not in genres:
                genres.append(genre)

    if rng.random() < 0.08:
        runtime = 0
    elif 16 in genres or 99 in genres:
        runtime = rng.randint(78, 112)
    else:
        runtime = max(72, min(190, round(rng.gauss(112, 17))))

    scale = {"en": 60_000_000, "ko": 6_000_000, "ja": 5_000_000, "zh": 20_000_000}.get(lang, 8_000_000)
    budget = 0 if rng.random() < 0.3 else round(scale * rng.lognormvariate(0, 0.9), -5)
    if budget and rng.random() < 0.01:
        budget = rng.choice((5, 100, 1000))  # junk user entries exist
    revenue = 0 if rng.random() < 0.4 else round((budget or scale) * rng.lognormvariate(0.6, 1.1))

    slug = "".join(ch for ch in (title_en or f"film{movie_id}").lower() if ch in string.ascii_lowercase)
    homepage = f"https://www.{slug or 'film'}-movie.com" if rng.random() < 0.4 else ""
    imdb_id = None if rng.random() < 0.15 else f"tt{rng.randint(1_000_000, 36_000_000):07d}"
    poster_path = None if rng.random() < 0.03 else _image(rng)
    backdrop_path = None if rng.random() < 0.06 else _image(rng)

    companies: list[Company] = []
    if rng.random() >= 0.05:
        local = [c for c in vocab.COMPANIES if c[2] == country] or list(vocab.COMPANIES)
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            cid, name, origin, has_logo = rng.choice(local if rng.random() < 0.75 else vocab.COMPANIES)
            if any(c.id == cid for c in companies):
                continue
            logo = _image(rng, ".png") if has_logo else None
            companies.append(Company(cid, logo, name, origin))
    countries: list[str] = [] if rng.random() < 0.03 else [country]
    for company in companies:
        if countries and company.origin_country and company.origin_country not in countries:
            countries.append(company.origin_country)
    spoken: list[str] = [] if rng.random() < 0.02 else [lang]
    if spoken and lang != "en" and rng.random() < 0.3:
        spoken.append("en")
    origin_country = () if rng.random() < 0.04 else (country,)

    vote_count = 0 if rng.random() < 0.1 else min(40_000, int(rng.lognormvariate(5.0, 1.8)))
    vote_average: float | int
    if vote_count == 0:
        vote_average = 0
    elif vote_count < 4 or rng.random() < 0.05:
        vote_average = rng.randint(4, 9)
    else:
        vote_average = round(rng.uniform(4.6, 8.7), 3)
    pop_base = min(9000.0, rng.lognormvariate(3.3, 1.3) + vote_count / 60.0)
    fresh = vote_count == 0 and rng.random() < 0.35
    certification = rng.choices(("All", "12", "15", "18", ""), weights=(20, 35, 30, 10, 5))[0]

    return Movie(
        id=movie_id,
        kr_release=kr_release,
        kr_rerelease=rerelease,
        primary_release=primary,
        original_language=lang,
        original_title=original_title,
        title_en=title_en,
        title_ko=title_ko,
        overview_en=overview_en,
        overview_ko=overview_ko,
        tagline_en=tagline_en,
        tagline_ko=tagline_ko,
        genre_ids=tuple(genres),
        runtime=runtime,
        budget=int(budget),
        revenue=int(revenue),
        homepage=homepage,
        imdb_id=imdb_id,
        poster_path=poster_path,
        backdrop_path=backdrop_path,
        companies=tuple(companies),
        countries=tuple(countries),
        spoken_languages=tuple(spoken),
        origin_country=origin_country,
        vote_count=vote_count,
        vote_average=vote_average,
        pop_base=pop_base,
        fresh=fresh,
        collection=collection,
        certification=certification,
    )


def movies_of_day(day_index: int) -> tuple[Movie, ...]:
    """The catalogue entries whose ids belong to day ``day_index`` (Korean releases first)."""
    rng = random.Random(0x5EED_0000 + day_index)
    day = CATALOGUE_START + timedelta(days=day_index)
    korean = rng.choices(range(6), weights=(5, 10, 20, 30, 20, 15))[0]
    elsewhere = rng.choices(range(9), weights=(4, 8, 12, 16, 18, 16, 12, 8, 6))[0]
    return tuple(_movie(rng, day_index, slot, day, slot < korean) for slot in range(korean + elsewhere))


@dataclass(frozen=True, slots=True, eq=False)
class Catalogue:
    movies: tuple[Movie, ...]
    by_id: dict[int, Movie]
    by_kr_date: dict[date, tuple[Movie, ...]]
    by_any_date: dict[date, tuple[Movie, ...]]


@functools.cache
def catalogue() -> Catalogue:
    """The whole catalogue (built once per process, about a second)."""
    movies: list[Movie] = []
    for day_index in range((CATALOGUE_END - CATALOGUE_START).days + 1):
        movies.extend(movies_of_day(day_index))
    by_kr: dict[date, list[Movie]] = {}
    by_any: dict[date, list[Movie]] = {}
    for movie in movies:
        for d in movie.kr_dates():
            by_kr.setdefault(d, []).append(movie)
        for d in set(movie.all_dates()):
            by_any.setdefault(d, []).append(movie)
    return Catalogue(
        movies=tuple(movies),
        by_id={movie.id: movie for movie in movies},
        by_kr_date={d: tuple(ms) for d, ms in by_kr.items()},
        by_any_date={d: tuple(ms) for d, ms in by_any.items()},
    )


def popularity(movie: Movie, day: date) -> float | int:
    """Popularity on ``day``: peaks around the release, decays after, jitters daily; 3-4 decimals."""
    reference = movie.kr_release or movie.primary_release or CATALOGUE_START
    age = (day - reference).days
    if movie.fresh and -60 <= age < 10:
        return 0
    if age < -120:
        factor = 0.04
    elif age < 0:
        factor = 0.15 + 0.85 * math.exp(age / 12.0)
    else:
        factor = 0.08 + 0.92 * math.exp(-age / 28.0)
    if movie.kr_rerelease is not None and 0 <= (day - movie.kr_rerelease).days < 60:
        factor = max(factor, 0.45 * math.exp(-(day - movie.kr_rerelease).days / 20.0))
    h = mix32(movie.id * 0x9E3779B1 + day.toordinal() * 0x85EBCA77)
    value = movie.pop_base * factor * (0.82 + 0.36 * (h & 0xFFFF) / 65535.0) + 0.4 + ((h >> 16) & 0xFF) / 300.0
    return round(value, 4 if (h >> 24) & 1 else 3)


Ranked = tuple[Movie, float | int]


def ranked(movies: list[Movie], day: date) -> list[Ranked]:
    """Movies by popularity, descending, with a few deterministic adjacent inversions (as observed)."""
    scored = sorted(((m, popularity(m, day)) for m in movies), key=lambda pair: (-pair[1], pair[0].id))
    salt = day.toordinal() * 0x632BE5AB
    i = 0
    while i < len(scored) - 1:
        if mix32(scored[i][0].id ^ salt) % 9 == 0:
            scored[i], scored[i + 1] = scored[i + 1], scored[i]
            i += 2
        else:
            i += 1
    return scored


def now_playing_window(kst_day: date) -> tuple[date, date]:
    """``(minimum, maximum)``: 42 days, Wednesday to Wednesday, ``maximum`` on or after ``kst_day``."""
    maximum = kst_day + timedelta(days=(2 - kst_day.weekday()) % 7)
    return maximum - timedelta(days=42), maximum


def _dates_between(start: date, end: date) -> list[date]:
    start = max(start, CATALOGUE_START)
    end = min(end, CATALOGUE_END)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def released_between(start: date, end: date, region: str | None) -> list[Movie]:
    """Movies with a theatrical release in ``[start, end]``: in Korea (``KR``), in a movie's origin country
    (another region), or anywhere (``None``)."""
    cat = catalogue()
    seen: dict[int, Movie] = {}
    if region == "KR":
        for d in _dates_between(start, end):
            for movie in cat.by_kr_date.get(d, ()):
                seen.setdefault(movie.id, movie)
    elif region is None:
        for d in _dates_between(start, end):
            for movie in cat.by_any_date.get(d, ()):
                seen.setdefault(movie.id, movie)
    else:
        for d in _dates_between(start, end):
            for movie in cat.by_any_date.get(d, ()):
                if movie.primary_release == d and region in movie.origin_country:
                    seen.setdefault(movie.id, movie)
    return list(seen.values())


def _is_korean(language: str) -> bool:
    return language.split("-", 1)[0].lower() == "ko"


def _is_english(language: str) -> bool:
    return language.split("-", 1)[0].lower() == "en"


def localized_title(movie: Movie, language: str) -> str:
    if _is_english(language):
        return movie.title_en or movie.original_title
    if _is_korean(language):
        return movie.title_ko or movie.original_title
    return movie.original_title


def localized_overview(movie: Movie, language: str) -> str:
    if _is_english(language):
        return movie.overview_en
    if _is_korean(language):
        return movie.overview_ko
    return ""


def list_release_date(movie: Movie, region: str | None) -> str:
    if movie.primary_release is None:
        return ""
    if region == "KR" and movie.kr_release is not None:
        return movie.kr_release.isoformat()
    return movie.primary_release.isoformat()


def list_item(movie: Movie, pop: float | int, language: str, region: str | None) -> dict[str, object]:
    """A result item as list endpoints (now_playing, discover) emit it."""
    return {
        "adult": False,
        "backdrop_path": movie.backdrop_path,
        "genre_ids": list(movie.genre_ids),
        "id": movie.id,
        "original_language": movie.original_language,
        "original_title": movie.original_title,
        "overview": localized_overview(movie, language),
        "popularity": pop,
        "poster_path": movie.poster_path,
        "release_date": list_release_date(movie, region),
        "title": localized_title(movie, language),
        "video": False,
        "vote_average": movie.vote_average,
        "vote_count": movie.vote_count,
    }


def movie_details(movie: Movie, language: str, day: date) -> dict[str, object]:
    """``GET /3/movie/{id}``: key order of the official example (movie 11)."""
    korean = _is_korean(language)
    english = _is_english(language)
    collection: dict[str, object] | None = None
    if movie.collection is not None:
        c = movie.collection
        collection = {
            "id": c.id,
            "name": c.name_ko if korean else c.name_en,
            "poster_path": c.poster_path,
            "backdrop_path": c.backdrop_path,
        }
    genres = [{"id": g, "name": vocab.GENRES[g][1] if korean else vocab.GENRES[g][0]} for g in movie.genre_ids]
    if english:
        tagline, homepage = movie.tagline_en, movie.homepage
    elif korean:
        tagline = movie.tagline_ko
        homepage = movie.homepage if movie.original_language == "ko" else ""
    else:
        tagline, homepage = "", ""
    return {
        "adult": False,
        "backdrop_path": movie.backdrop_path,
        "belongs_to_collection": collection,
        "budget": movie.budget,
        "genres": genres,
        "homepage": homepage,
        "id": movie.id,
        "imdb_id": movie.imdb_id,
        "origin_country": list(movie.origin_country),
        "original_language": movie.original_language,
        "original_title": movie.original_title,
        "overview": localized_overview(movie, language),
        "popularity": popularity(movie, day),
        "poster_path": movie.poster_path,
        "production_companies": [
            {"id": c.id, "logo_path": c.logo_path, "name": c.name, "origin_country": c.origin_country}
            for c in movie.companies
        ],
        "production_countries": [{"iso_3166_1": iso, "name": vocab.COUNTRIES[iso]} for iso in movie.countries],
        "release_date": movie.primary_release.isoformat() if movie.primary_release else "",
        "revenue": movie.revenue,
        "runtime": movie.runtime,
        "spoken_languages": [
            {"english_name": vocab.SPOKEN_LANGUAGES[iso][0], "iso_639_1": iso, "name": vocab.SPOKEN_LANGUAGES[iso][1]}
            for iso in movie.spoken_languages
        ],
        "status": "Released",
        "tagline": tagline,
        "title": localized_title(movie, language),
        "video": False,
        "vote_average": movie.vote_average,
        "vote_count": movie.vote_count,
    }


def release_dates(movie: Movie) -> dict[str, object]:
    """The ``release_dates`` append (tmdb.md §5.2): type 3 entries for Korea and the origin country."""

    def entry(d: date, certification: str, note: str) -> dict[str, object]:
        return {
            "certification": certification,
            "descriptors": [],
            "iso_639_1": "",
            "note": note,
            "release_date": f"{d.isoformat()}T00:00:00.000Z",
            "type": 3,
        }

    results: list[dict[str, object]] = []
    if movie.kr_release is not None:
        kr = [entry(movie.kr_release, movie.certification, "")]
        if movie.kr_rerelease is not None:
            kr.append(entry(movie.kr_rerelease, movie.certification, "재개봉"))
        results.append({"iso_3166_1": "KR", "release_dates": kr})
    origin = movie.origin_country[0] if movie.origin_country else None
    if movie.primary_release is not None and origin is not None and origin != "KR":
        results.append({"iso_3166_1": origin, "release_dates": [entry(movie.primary_release, "", "")]})
    return {"id": movie.id, "results": results}


def release_start(movie: Movie) -> datetime | None:
    """The KST midnight that starts the movie's release day (the Korean one, else the primary), if it has one."""
    day = movie.kr_release or movie.primary_release
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=KST)


def in_share(movie_id: int, share: float) -> bool:
    """Whether a movie falls in ``share`` of the catalogue, by a hash of its id (the same movies for any share
    below a larger one's)."""
    return mix32(movie_id * 0x2C1B3C6D + 0x7F4A7C15) < share * 2**32


def movie_by_id(movie_id: int) -> Movie | None:
    return catalogue().by_id.get(movie_id)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
