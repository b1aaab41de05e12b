"""Literal seed tables for the simulator's generated data (no logic here).

Station names follow the style described in shared/reference/airkorea.md §9: gu names in Seoul, dong/eup/myeon
names elsewhere, road names for roadside stations, port names for 항만 stations. A trailing ``:X`` marks the
network (``R`` 도로변대기, ``B`` 국가배경농도, ``S`` 교외대기, ``P`` 항만); no mark means 도시대기.

The movie vocabulary is parallel across languages, so a generated title can be "translated" consistently.
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------------------------------- stations

SIDOS: Final = (
    "서울",
    "부산",
    "대구",
    "인천",
    "광주",
    "대전",
    "울산",
    "경기",
    "강원",
    "충북",
    "충남",
    "전북",
    "전남",
    "경북",
    "경남",
    "제주",
    "세종",
)

# Realistic totals from airkorea.md §9, scaled up outside Seoul so the national sum lands in 640-675
# (the §9 column itself only sums to ~583). Seoul is the observed 40.
SIDO_STATION_COUNTS: Final[dict[str, int]] = {
    "서울": 40,
    "부산": 34,
    "대구": 22,
    "인천": 30,
    "광주": 14,
    "대전": 13,
    "울산": 22,
    "경기": 142,
    "강원": 34,
    "충북": 36,
    "충남": 48,
    "전북": 46,
    "전남": 52,
    "경북": 56,
    "경남": 50,
    "제주": 14,
    "세종": 7,
}

# Three-digit stationCode prefix per sido (Seoul's 111 is observed; the others are made up but fixed).
SIDO_CODE_PREFIX: Final[dict[str, int]] = {
    "서울": 111,
    "부산": 221,
    "대구": 422,
    "인천": 823,
    "광주": 646,
    "대전": 525,
    "울산": 226,
    "경기": 131,
    "강원": 632,
    "충북": 133,
    "충남": 534,
    "전북": 735,
    "전남": 336,
    "경북": 437,
    "경남": 238,
    "제주": 339,
    "세종": 329,
}

# Seoul: the 25 borough stations and the 15 roadside stations, with fixed codes
# (111121 중구, 111123 종로구, 111162 정릉로 and 111261 are observed).
SEOUL_STATIONS: Final[tuple[tuple[str, str, int], ...]] = (
    ("중구", "도시대기", 111121),
    ("한강대로", "도로변대기", 111122),
    ("종로구", "도시대기", 111123),
    ("청계천로", "도로변대기", 111124),
    ("종로", "도로변대기", 111125),
    ("용산구", "도시대기", 111131),
    ("광진구", "도시대기", 111141),
    ("성동구", "도시대기", 111142),
    ("강변북로", "도로변대기", 111143),
    ("중랑구", "도시대기", 111151),
    ("동대문구", "도시대기", 111152),
    ("홍릉로", "도로변대기", 111154),
    ("성북구", "도시대기", 111161),
    ("정릉로", "도로변대기", 111162),
    ("도봉구", "도시대기", 111171),
    ("은평구", "도시대기", 111181),
    ("서대문구", "도시대기", 111191),
    ("마포구", "도시대기", 111201),
    ("신촌로", "도로변대기", 111202),
    ("강서구", "도시대기", 111212),
    ("공항대로", "도로변대기", 111213),
    ("구로구", "도시대기", 111221),
    ("영등포구", "도시대기", 111231),
    ("영등포로", "도로변대기", 111232),
    ("동작구", "도시대기", 111241),
    ("동작대로 중앙차로", "도로변대기", 111242),
    ("관악구", "도시대기", 111251),
    ("강남구", "도시대기", 111261),
    ("서초구", "도시대기", 111262),
    ("강남대로", "도로변대기", 111263),
    ("도산대로", "도로변대기", 111264),
    ("송파구", "도시대기", 111273),
    ("강동구", "도시대기", 111274),
    ("천호대로", "도로변대기", 111275),
    ("금천구", "도시대기", 111281),
    ("시흥대로", "도로변대기", 111282),
    ("강북구", "도시대기", 111291),
    ("양천구", "도시대기", 111301),
    ("노원구", "도시대기", 111311),
    ("화랑로", "도로변대기", 111312),
)

MANG_CODES: Final[dict[str, str]] = {
    "C": "도시대기",
    "R": "도로변대기",
    "B": "국가배경농도",
    "S": "교외대기",
    "P": "항만",
}

# Hand-picked names per sido (the rest is filled with generated dong/eup/myeon names). Several names repeat
# across sidos on purpose (부곡동, 중앙동, 상대동, 성남동, 중앙로, ...): they get a "(sido)" suffix.
SIDO_SEED_NAMES: Final[dict[str, str]] = {
    "부산": "광복동 초량동 태종대:S 전포동 온천동 명장동 대연동 학장동 덕천동 청룡동 좌동 장림동 대저동 녹산동 "
    "연산동 기장읍 용수리:S 수정동 부곡동 광안동 대신동 재송동 개금동 당리동 회동동 덕포동 명지동 청학동 "
    "화명동 부산북항:P 부산신항:P 감천항:P 중앙대로:R 수영로:R",
    "대구": "수창동 태전동 남산1동 이현동 신암동 만촌동 시지동 서호동 지산동 대명동 호림동 노원동 진천동 평리동 "
    "유가읍:S 현풍읍 다사읍 안심 이곡동 율하동 중앙로:R 달구벌대로:R",
    "인천": "신흥 송림 숭의 구월동 부평 계산 연희 석남 동춘 송도 논현 고잔 검단 원당 청라 백령도:B 덕적도:B "
    "석바위:R 강화:S 영종 운서 송해 부평역:R 신포:R 인천항:P 남항:P 연안부두:P 서창 불로 길상:S",
    "광주": "농성동 두암동 건국동 서석동 주월동 치평동 송정1동 오선동 운암동 노대동 평동:S 효덕동 일곡동 무진로:R",
    "대전": "문창동 구성동 대흥동 읍내동 정림동 둔산동 노은동 상대동 성남동 문평동 관평동 월평동 대덕대로:R",
    "울산": "신정동 성남동 무거동 야음동 대송동 여천동 덕신리 화산리 부곡동 효문동 농소동 삼남읍 상남리:S "
    "범서읍 온산:S 울산항:P 삼산로:R 언양읍 매곡동 송정동 방어동 청량읍",
    "경기": "신풍동 인계동 광교동 영통동 천천동 고색동 호매실동 동수원로:R 단대동 정자동 수내동 복정동 성남대로:R "
    "부림동 안양8동 호계동 안양로:R 내동 송내동 오정동 심곡동 중2동 소사본동 철산동 소하동 평택항:P 비전동 "
    "안중 고덕동 포승:S 보산동 고잔동 원시동 부곡동 대부동:S 호수동 원곡동 본오동 주엽동 행신동 식사동 "
    "고양대로:R 별양동 과천동 교문동 동구동 금곡동 오남읍 화도읍 별내동 오산동 시화산단 대야동 정왕동 목감동 "
    "장현동 당동 산본동 고천동 부곡3동 신장동 미사 김량장동 수지 기흥 백암면:S 모현읍 금촌동 운정 파주읍 "
    "설성면:S 창전동 봉산동 공도읍 사우동 고촌읍 통진읍 향남읍 남양읍 동탄 우정읍 새솔동 경안동 오포읍 곤지암 "
    "백석읍 고읍 선단동 관인면:S 가남읍 중앙동 연천:S 가평 청평 양평읍 의정부동 의정부1동",
    "강원": "중앙로:R 석사동 중앙동 명륜동 문막읍 옥천동 주문진읍 천곡동 남양동 황지동 금호동 영월읍 고한읍 "
    "평창읍 홍천읍 횡성읍 화천읍 양구읍 인제읍 간성읍 양양읍 갈말읍 북평동 반곡동 도계읍 효자동 정선읍 "
    "진부면:S 대관령:B",
    "충북": "사천동 문화동 송정동 용암동 복대동 오송읍 내수읍 칠금동 호암동 장락동 청전동 보은읍 옥천읍 영동읍 "
    "진천읍 괴산읍 음성읍 단양읍 증평읍 매포읍 금왕읍 오창읍 산남동 율량동 가경동 봉명동 용담동",
    "충남": "성성동 성황동 백석동 신방동 공주 대천2동 모종동 배방읍 독곶리 동문동 대산리 논산 엄사면 송산면 "
    "정곡리 난지도리:S 금산읍 부여읍 서천읍 청양읍 내포 예산군 파도리:B 이원면:S 신평면 홍성읍 태안읍 석문면 "
    "인주면 탕정면 대산항:P",
    "전북": "삼천동 중앙동 팔복동 효자동 신풍동 소룡동 개정동 팔봉동 모현동 남중동 연지동 도통동 요촌동 봉동읍 "
    "삼례읍 진안읍 무주읍 장수읍 임실읍 순창읍 고창읍 부안읍 새만금:S 군산항:P 송천동 혁신동 오식도동 "
    "기린대로:R",
    "전남": "용당동 부흥동 광무동 월내동 삼일동 문수동 여천동 연향동 장천동 호두리 빛가람동 중동 진상면 "
    "광양항:P 여수항:P 목포항:P 담양읍 곡성읍 구례읍 고흥읍 보성읍 화순읍 장흥읍 강진읍 해남읍 영암읍 무안읍 "
    "함평읍 영광읍 장성읍 완도읍 진도읍 압해읍 태인동 율촌면 덕례리 남악 연산동",
    "경북": "장흥동 대도동 대송면 3공단 성건동 용강동 신음동 옥동 명륜동 공단동 원평동 형곡동 휴천동 화북면:S "
    "완산동 계림동 점촌동 중방동 군위읍 의성읍 청송읍 영양읍 영덕읍 화양읍 대가야읍 성주읍 왜관읍 호명면 "
    "봉화읍 울진읍 울릉도:B 양포:S 포항항:P 장량동 4공단 선주원남동 안강읍 감포읍 하양읍 진량읍 북삼읍",
    "경남": "명서동 웅남동 용지동 사파동 회원동 봉암동 경화동 상대동 상봉동 정촌면 무전동 사천읍 동상동 삼방동 "
    "장유동 내이동 아주동 저구리:S 북부동 물금읍 의령읍 가야읍 창녕읍 고성읍 남해읍 하동읍 산청읍 함양읍 "
    "거창읍 합천읍 대산면 마산항:P 진해항:P 웅동 장승포동 회성동 창원대로:R",
    "제주": "이도동 연동 동홍동 고산리:B 성산 한림 남원 조천 대정 애월 표선 화북동 노형로:R 한경면:S",
    "세종": "신흥동 아름동 조치원읍 한솔동 보람동 부강면:S 소담동",
}

# Syllables for generated dong/eup/myeon names.
NAME_SYLLABLES_1: Final = tuple("신대중동서남북상하내원장송금용화청덕석월봉평산성양안영오문구학진효명광정백율사운고도")
NAME_SYLLABLES_2: Final = tuple("천곡림촌포암강전계현호리교천양흥산원정곡봉평성촌천주암진림남")

# --------------------------------------------------------------------------------------------------- movies

# TMDB movie genre ids with their English and Korean names.
GENRES: Final[dict[int, tuple[str, str]]] = {
    28: ("Action", "액션"),
    12: ("Adventure", "모험"),
    16: ("Animation", "애니메이션"),
    35: ("Comedy", "코미디"),
    80: ("Crime", "범죄"),
    99: ("Documentary", "다큐멘터리"),
    18: ("Drama", "드라마"),
    10751: ("Family", "가족"),
    14: ("Fantasy", "판타지"),
    36: ("History", "역사"),
    27: ("Horror", "공포"),
    10402: ("Music", "음악"),
    9648: ("Mystery", "미스터리"),
    10749: ("Romance", "로맨스"),
    878: ("Science Fiction", "SF"),
    53: ("Thriller", "스릴러"),
    10752: ("War", "전쟁"),
    37: ("Western", "서부"),
}

# Original languages with weights, and the production country that goes with each.
LANGUAGES: Final[tuple[tuple[str, int, str], ...]] = (
    ("en", 44, "US"),
    ("ko", 26, "KR"),
    ("ja", 12, "JP"),
    ("fr", 5, "FR"),
    ("zh", 4, "CN"),
    ("es", 3, "ES"),
    ("de", 3, "DE"),
    ("it", 3, "IT"),
)

# iso_639_1 -> (english_name, native name) as TMDB's spoken_languages shows them.
SPOKEN_LANGUAGES: Final[dict[str, tuple[str, str]]] = {
    "en": ("English", "English"),
    "ko": ("Korean", "한국어/조선말"),
    "ja": ("Japanese", "日本語"),
    "fr": ("French", "Français"),
    "zh": ("Mandarin", "普通话"),
    "es": ("Spanish", "Español"),
    "de": ("German", "Deutsch"),
    "it": ("Italian", "Italiano"),
}

COUNTRIES: Final[dict[str, str]] = {
    "US": "United States of America",
    "KR": "South Korea",
    "JP": "Japan",
    "FR": "France",
    "CN": "China",
    "ES": "Spain",
    "DE": "Germany",
    "IT": "Italy",
    "GB": "United Kingdom",
    "CA": "Canada",
    "HK": "Hong Kong",
}

# (id, name, origin_country, has_logo)
COMPANIES: Final[tuple[tuple[int, str, str, bool], ...]] = (
    (4399, "CJ ENM", "KR", True),
    (5752, "Showbox", "KR", True),
    (7036, "Lotte Entertainment", "KR", True),
    (11010, "NEW", "KR", True),
    (98431, "Plus M Entertainment", "KR", True),
    (126745, "Hive Media Corp", "KR", False),
    (174, "Warner Bros. Pictures", "US", True),
    (33, "Universal Pictures", "US", True),
    (5, "Columbia Pictures", "US", True),
    (4, "Paramount Pictures", "US", True),
    (2, "Walt Disney Pictures", "US", True),
    (41077, "A24", "US", True),
    (3172, "Blumhouse Productions", "US", True),
    (923, "Legendary Pictures", "US", True),
    (1632, "Lionsgate", "US", True),
    (90733, "Neon", "US", True),
    (882, "Toho", "JP", True),
    (5542, "Toei Animation", "JP", True),
    (3464, "Shochiku", "JP", True),
    (9195, "Gaumont", "FR", True),
    (694, "StudioCanal", "FR", True),
    (7981, "Pathé", "FR", True),
    (14714, "China Film Group Corporation", "CN", True),
    (76907, "Huayi Brothers", "CN", False),
    (47, "Constantin Film", "DE", True),
    (1583, "Rai Cinema", "IT", True),
    (49, "El Deseo", "ES", True),
    (104228, "Moonlight Pictures", "", False),
    (210099, "Blue Harbor Films", "", False),
    (156484, "BBC Film", "GB", True),
    (1020, "Telefilm Canada", "CA", True),
    (5141, "Media Asia Films", "HK", True),
)

# Title building blocks: (en, ko, ja, fr, zh, es, de, it).
TITLE_ADJECTIVES: Final[tuple[tuple[str, ...], ...]] = (
    ("Last", "마지막", "最後の", "Dernier", "最后的", "Último", "Letzte", "Ultimo"),
    ("Silent", "조용한", "静かな", "Silencieux", "沉默的", "Silencioso", "Stille", "Silenzioso"),
    ("Hidden", "숨겨진", "隠された", "Caché", "隐藏的", "Oculto", "Verborgene", "Nascosto"),
    ("Broken", "부서진", "壊れた", "Brisé", "破碎的", "Roto", "Zerbrochene", "Spezzato"),
    ("Golden", "황금", "黄金の", "Doré", "黄金", "Dorado", "Goldene", "Dorato"),
    ("Dark", "어두운", "暗い", "Sombre", "黑暗的", "Oscuro", "Dunkle", "Oscuro"),
    ("Endless", "끝없는", "果てしない", "Infini", "无尽的", "Infinito", "Endlose", "Infinito"),
    ("Secret", "비밀의", "秘密の", "Secret", "秘密的", "Secreto", "Geheime", "Segreto"),
    ("Wild", "야생의", "野生の", "Sauvage", "狂野的", "Salvaje", "Wilde", "Selvaggio"),
    ("Blue", "푸른", "青い", "Bleu", "蓝色的", "Azul", "Blaue", "Blu"),
    ("Lost", "잃어버린", "失われた", "Perdu", "迷失的", "Perdido", "Verlorene", "Perduto"),
    ("Burning", "불타는", "燃える", "Brûlant", "燃烧的", "Ardiente", "Brennende", "Ardente"),
    ("Little", "작은", "小さな", "Petit", "小小的", "Pequeño", "Kleine", "Piccolo"),
    ("Midnight", "한밤의", "真夜中の", "Minuit", "午夜的", "Medianoche", "Mitternächtliche", "Mezzanotte"),
    ("Northern", "북쪽의", "北の", "Nordique", "北方的", "Norteño", "Nördliche", "Nordico"),
    ("Final", "최후의", "最終の", "Final", "最终的", "Final", "Finale", "Finale"),
)

TITLE_NOUNS: Final[tuple[tuple[str, ...], ...]] = (
    ("Harbor", "항구", "港", "Port", "港口", "Puerto", "Hafen", "Porto"),
    ("Summer", "여름", "夏", "Été", "夏天", "Verano", "Sommer", "Estate"),
    ("Witness", "목격자", "目撃者", "Témoin", "目击者", "Testigo", "Zeuge", "Testimone"),
    ("Kingdom", "왕국", "王国", "Royaume", "王国", "Reino", "Königreich", "Regno"),
    ("Garden", "정원", "庭", "Jardin", "花园", "Jardín", "Garten", "Giardino"),
    ("Letter", "편지", "手紙", "Lettre", "信", "Carta", "Brief", "Lettera"),
    ("Hunter", "사냥꾼", "狩人", "Chasseur", "猎人", "Cazador", "Jäger", "Cacciatore"),
    ("Island", "섬", "島", "Île", "岛", "Isla", "Insel", "Isola"),
    ("Promise", "약속", "約束", "Promesse", "承诺", "Promesa", "Versprechen", "Promessa"),
    ("Shadow", "그림자", "影", "Ombre", "影子", "Sombra", "Schatten", "Ombra"),
    ("Road", "길", "道", "Route", "路", "Camino", "Straße", "Strada"),
    ("Family", "가족", "家族", "Famille", "家庭", "Familia", "Familie", "Famiglia"),
    ("Detective", "형사", "刑事", "Détective", "侦探", "Detective", "Detektiv", "Detective"),
    ("Station", "정거장", "駅", "Gare", "车站", "Estación", "Bahnhof", "Stazione"),
    ("Winter", "겨울", "冬", "Hiver", "冬天", "Invierno", "Winter", "Inverno"),
    ("Voice", "목소리", "声", "Voix", "声音", "Voz", "Stimme", "Voce"),
    ("Heist", "작전", "作戦", "Casse", "行动", "Golpe", "Coup", "Colpo"),
    ("Dragon", "용", "竜", "Dragon", "龙", "Dragón", "Drache", "Drago"),
    ("Memory", "기억", "記憶", "Mémoire", "记忆", "Memoria", "Erinnerung", "Memoria"),
    ("River", "강", "川", "Rivière", "河流", "Río", "Fluss", "Fiume"),
    ("Night", "밤", "夜", "Nuit", "夜晚", "Noche", "Nacht", "Notte"),
    ("Teacher", "선생님", "先生", "Professeur", "老师", "Maestro", "Lehrer", "Maestro"),
    ("Star", "별", "星", "Étoile", "星星", "Estrella", "Stern", "Stella"),
    ("Code", "코드", "コード", "Code", "密码", "Código", "Code", "Codice"),
)

# Overview phrases: (en, ko).
OVERVIEW_ROLES: Final[tuple[tuple[str, str], ...]] = (
    ("a retired detective", "은퇴한 형사"),
    ("a young pianist", "젊은 피아니스트"),
    ("two estranged sisters", "사이가 멀어진 두 자매"),
    ("a small-town mechanic", "작은 마을의 정비공"),
    ("a rookie reporter", "신입 기자"),
    ("an exiled prince", "추방된 왕자"),
    ("a single father", "홀로 아이를 키우는 아버지"),
    ("a disgraced surgeon", "명예를 잃은 외과의사"),
    ("a group of high-school friends", "고등학교 동창들"),
    ("a stubborn ship captain", "고집 센 선장"),
)

OVERVIEW_EVENTS: Final[tuple[tuple[str, str], ...]] = (
    ("discovers a letter hidden for thirty years", "30년 동안 숨겨져 있던 편지를 발견하고"),
    ("is framed for a crime nobody saw", "아무도 보지 못한 범죄의 누명을 쓰고"),
    ("inherits a crumbling seaside hotel", "무너져 가는 바닷가 호텔을 물려받고"),
    ("wakes up with no memory of the night before", "전날 밤의 기억을 잃은 채 깨어나고"),
    ("receives a mysterious phone call", "의문의 전화를 받고"),
    ("witnesses a robbery on the last train", "막차에서 강도 사건을 목격하고"),
    ("loses everything in a single bet", "단 한 번의 내기로 모든 것을 잃고"),
    ("returns home after a decade abroad", "10년 만에 고향으로 돌아오고"),
)

OVERVIEW_GOALS: Final[tuple[tuple[str, str], ...]] = (
    ("uncover the truth", "진실을 밝히기"),
    ("protect the people they love", "사랑하는 사람들을 지키기"),
    ("win back a lost dream", "잃어버린 꿈을 되찾기"),
    ("escape a city that will not let them go", "놓아주지 않는 도시를 탈출하기"),
    ("finish one last job", "마지막 한 건을 끝내기"),
    ("find a missing child", "사라진 아이를 찾기"),
)

OVERVIEW_DEADLINES: Final[tuple[tuple[str, str], ...]] = (
    ("the storm hits", "폭풍이 닥치기"),
    ("the sun comes up", "해가 뜨기"),
    ("the festival ends", "축제가 끝나기"),
    ("time runs out", "시간이 다하기"),
    ("the last ferry leaves", "마지막 배가 떠나기"),
)

TAGLINES: Final[tuple[tuple[str, str], ...]] = (
    ("Some secrets never stay buried.", "어떤 비밀은 영원히 묻히지 않는다."),
    ("Every choice has a price.", "모든 선택에는 대가가 따른다."),
    ("The truth is closer than you think.", "진실은 생각보다 가까이 있다."),
    ("One night. No way out.", "단 하룻밤, 출구는 없다."),
    ("Home is where the story begins.", "모든 이야기는 집에서 시작된다."),
    ("Trust no one.", "아무도 믿지 마라."),
    ("The legend returns.", "전설이 돌아온다."),
    ("Love finds a way.", "사랑은 길을 찾는다."),
    ("Run. Hide. Survive.", "달려라. 숨어라. 살아남아라."),
    ("Nothing is what it seems.", "보이는 것이 전부가 아니다."),
)

# Genre ids each original language leans towards (added to the uniform draw).
GENRE_LEANINGS: Final[dict[str, tuple[int, ...]]] = {
    "en": (28, 12, 878, 35, 27, 53),
    "ko": (18, 53, 80, 35, 10749),
    "ja": (16, 14, 10751, 18),
    "fr": (18, 35, 10749),
    "zh": (28, 36, 14, 18),
    "es": (18, 53, 27),
    "de": (18, 36, 10752),
    "it": (18, 35, 10749),
}

IMAGE_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
