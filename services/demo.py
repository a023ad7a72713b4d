"""The demo programme: a plausible subdistrict to click through, generated reproducibly.

Names, phones and ID numbers are generated (the phones use a seeded generator, the ID numbers are
valid in form only); nothing here is a real person.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.event import Assignment, Event, Shift
from models.point import PatrolPoint
from models.user import ROLE_ADMIN, User
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, from_local, system_clock
from services.pii import PersonalDataCipher, mask_id_number
from werkzeug.security import generate_password_hash

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强春梅玉兰海燕红梅金凤德明文华国平丽华晓东美玲小平永红建军卫东凤英秋菊冬梅"
TEAMS = ["浦锦苑居委", "塘口居委", "丰顺居委", "芦胜居委", "汇福居委", "浦航居委", "鑫都居委", "新浦江城居委"]
PHONE_PREFIXES = ["133", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159",
                  "180", "181", "182", "187", "188", "189"]
# Around 浦锦街道, Minhang (WGS-84), plausible but invented street corners.
POINTS = [
    ("PJ01", "浦锦路浦星公路路口", "浦锦路与浦星公路交叉口东北角", 31.0689, 121.5049),
    ("PJ02", "芦恒路浦秀路口", "芦恒路与浦秀路交叉口", 31.0622, 121.4985),
    ("PJ03", "丰南路浦驰路口", "丰南路与浦驰路交叉口", 31.0551, 121.5102),
    ("PJ04", "浦锦街道社区事务受理中心", "浦锦路 1000 号门前", 31.0702, 121.5121),
    ("PJ05", "塘口集贸市场", "塘口路市场北门", 31.0761, 121.5007),
    ("PJ06", "浦江第一中学南门", "浦秀路学校南门", 31.0648, 121.4921),
    ("PJ07", "芦胜村烟花禁放点", "芦胜路村口", 31.0584, 121.4874),
    ("PJ08", "汇福家园南门", "汇福路小区南门", 31.0735, 121.5183),
    ("PJ09", "浦航新城广场", "浦航路广场入口", 31.0517, 121.5026),
    ("PJ10", "地铁8号线沈杜公路站", "沈杜公路站 2 号口", 31.0794, 121.4916),
    ("PJ11", "鑫都路商业街", "鑫都路步行街中段", 31.0662, 121.5233),
    ("PJ12", "黄浦江滨江步道", "滨江步道观景平台", 31.0823, 121.5269),
]
# Spring Festival (正月初一) dates, for the campaign on the next key date.
SPRING_FESTIVAL = {2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
                   2029: date(2029, 2, 13), 2030: date(2030, 2, 3), 2031: date(2031, 1, 23)}
VOLUNTEERS = 500


@dataclass(frozen=True)
class DemoInfo:
    loaded: bool
    volunteers: int
    points: int
    events: int
    shifts: int
    admin_username: str


def _fake_id_number(rng: random.Random) -> str:
    born = date(1955, 1, 1) + timedelta(days=rng.randrange(0, 365 * 45))
    body = "310112" + born.strftime("%Y%m%d") + f"{rng.randrange(0, 1000):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def _next_spring_festival(today: date) -> date:
    for year in sorted(SPRING_FESTIVAL):
        if SPRING_FESTIVAL[year] - timedelta(days=1) >= today:
            return SPRING_FESTIVAL[year]
    return SPRING_FESTIVAL[max(SPRING_FESTIVAL)]


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count(Volunteer.id))) and not session.scalar(
        select(func.count(PatrolPoint.id)))


def load_demo(session: Session, *, cipher: PersonalDataCipher, admin_password: str,
              clock: Clock = system_clock, admin_username: str = "admin") -> DemoInfo:
    """Fill an empty database with the demo programme; does nothing to a database with data."""
    if not is_empty(session):
        return DemoInfo(False, 0, 0, 0, 0, admin_username)
    rng = random.Random(20240101)
    now = clock()
    local_now = now.astimezone(SHANGHAI)
    today = local_now.date()

    phones: set[str] = set()
    volunteers = []
    for i in range(VOLUNTEERS):
        while True:
            phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(0, 10**8):08d}"
            if phone not in phones:
                phones.add(phone)
                break
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        vol = Volunteer(name=rng.choice(SURNAMES) + given[:2], phone=phone, team=TEAMS[i % len(TEAMS)],
                        vest_no=f"PJ-{i + 1:04d}", joined_on=date(today.year, 1, 1))
        if i % 5 == 0:
            idn = _fake_id_number(rng)
            vol.id_number_enc = cipher.encrypt(idn)
            vol.id_number_hash = cipher.blind_index(idn)
            vol.id_number_masked = mask_id_number(idn)
        volunteers.append(vol)
    session.add_all(volunteers)

    points = [PatrolPoint(code=c, name=n, address=a, lat=lat, lon=lon, radius_m=150)
              for c, n, a, lat, lon in POINTS]
    session.add_all(points)
    session.flush()

    shifts: list[Shift] = []
    hour_start = local_now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    winter = Event(name="岁末平安巡逻", starts_on=(hour_start - timedelta(hours=1)).date(), ends_on=today + timedelta(days=7),
                   description="年末重点时段街面巡逻（演示数据）")
    session.add(winter)
    session.flush()
    for p in points[:4]:  # a shift covering the current time, to try a scan right away
        shifts.append(Shift(event_id=winter.id, point_id=p.id, starts_at=from_local(hour_start - timedelta(hours=1)),
                            ends_at=from_local(hour_start + timedelta(hours=3)), capacity=12))
    for offset in range(1, 8):
        day = today + timedelta(days=offset)
        for p in points[::2]:
            shifts.append(Shift(event_id=winter.id, point_id=p.id,
                                starts_at=from_local(datetime.combine(day, time(18, 30))),
                                ends_at=from_local(datetime.combine(day, time(21, 30))), capacity=8))

    festival = _next_spring_festival(today)
    spring = Event(name=f"{festival.year}年春节烟花爆竹安全管控", starts_on=festival - timedelta(days=1),
                   ends_on=festival + timedelta(days=14),
                   description="除夕、初五、元宵烟花爆竹禁放巡查劝阻（演示数据）")
    session.add(spring)
    session.flush()
    for day, start, end in ((festival - timedelta(days=1), time(18, 0), time(23, 59)),
                            (festival + timedelta(days=4), time(18, 0), time(23, 0)),
                            (festival + timedelta(days=14), time(18, 30), time(22, 0))):
        for p in points:
            shifts.append(Shift(event_id=spring.id, point_id=p.id,
                                starts_at=from_local(datetime.combine(day, start)),
                                ends_at=from_local(datetime.combine(day, end)), capacity=15))
    session.add_all(shifts)
    session.flush()

    for n, shift in enumerate(shifts):
        for k in range(min(shift.capacity - 2, 6)):
            session.add(Assignment(shift_id=shift.id, volunteer_id=volunteers[(n * 7 + k) % VOLUNTEERS].id))

    _demo_history(session, rng, volunteers, points, today)

    if session.scalar(select(User.id).where(User.username == admin_username)) is None:
        session.add(User(username=admin_username, display_name="平安办管理员", role=ROLE_ADMIN,
                         password_hash=generate_password_hash(admin_password)))
    session.commit()
    return DemoInfo(True, len(volunteers), len(points), 2, len(shifts), admin_username)


def _demo_history(session: Session, rng: random.Random, volunteers: list[Volunteer], points: list[PatrolPoint],
                  today: date) -> None:
    """This year so far: patrols, insurance, kit, spending, a survey — so the dashboard has data."""
    from decimal import Decimal

    from models.attendance import Attendance, AttendanceCredit
    from models.messaging import SurveyAnswer, SurveyRound
    from models.programme import (Complaint, EquipmentDelivery, EquipmentIssue, Expenditure, InsuranceCover,
                                  InsurancePolicy, ProgrammeDocument)

    year_start = date(today.year, 1, 1)
    days_so_far = max(1, (today - year_start).days)
    history = Event(name=f"{today.year}年常态化平安巡逻", starts_on=year_start, ends_on=today - timedelta(days=1),
                    description="重大节点与节假日巡逻记录（演示数据）")
    session.add(history)
    session.flush()
    for vol in volunteers:
        for _k in range(rng.choice((0, 1, 2, 2, 3, 3, 4, 5))):
            day = year_start + timedelta(days=rng.randrange(days_so_far))
            start = from_local(datetime.combine(day, time(rng.choice((9, 14, 18, 19)))))
            minutes = rng.choice((60, 90, 120, 150, 180))
            att = Attendance(volunteer_id=vol.id, event_id=history.id, point_id=rng.choice(points).id, source="scan",
                             status="closed", check_in_at=start, check_out_at=start + timedelta(minutes=minutes),
                             credited_minutes=minutes, work_date=day, review_status="none", flags="", walk_in=False)
            session.add(att)
            session.flush()
            session.add(AttendanceCredit(attendance_id=att.id, volunteer_id=vol.id, work_date=day, minutes=minutes))
    policy = InsurancePolicy(insurer="（演示）某财产保险公司", policy_no=f"DEMO-{today.year}-001",
                             cover_start=year_start, cover_end=date(today.year, 12, 31),
                             premium_per_person=Decimal("9.80"))
    session.add(policy)
    session.flush()
    session.add_all([InsuranceCover(policy_id=policy.id, volunteer_id=v.id) for v in volunteers[:495]])
    session.add(EquipmentDelivery(supplier="（演示）某服装厂", delivered_on=year_start + timedelta(days=20), sets=500,
                                  unit_cost=Decimal("58.00"), passed_sets=498, inspection_note="2 套反光条脱落，已退换"))
    session.add_all([EquipmentIssue(volunteer_id=v.id, issued_on=year_start + timedelta(days=31), kit="马甲套装")
                     for v in volunteers[:490]])
    for month, amount, what in ((1, "1860.00", "春节值守餐饮"), (2, "2400.50", "元宵巡逻饮用水与交通"),
                                (5, "980.00", "五一节假日巡逻餐饮"), (10, "2150.00", "国庆巡逻餐饮与交通")):
        if date(today.year, month, 15) < today:
            session.add(Expenditure(year=today.year, line="work_fund", spent_on=date(today.year, month, 15),
                                    amount=Decimal(amount), description=what, payee="（演示）社区食堂"))
    opens = from_local(datetime.combine(year_start + timedelta(days=min(150, days_so_far - 1)), time(9)))
    survey = SurveyRound(name=f"{today.year}年年中满意度调查", question="您对平安志愿者工作的组织和保障是否满意？",
                         opens_at=opens, sent_at=opens)
    session.add(survey)
    session.flush()
    session.add_all([SurveyAnswer(round_id=survey.id, volunteer_id=v.id, score=rng.choice((5, 5, 5, 4, 4, 4, 4, 3)),
                                  channel="web", answered_at=opens + timedelta(days=1), awaiting_comment=False)
                     for v in volunteers[:380]])
    session.add(Complaint(received_on=year_start + timedelta(days=min(60, days_so_far - 1)), source="居民来电",
                          description="劝阻燃放时语气生硬（演示数据）", finding="经核实属实", resolution="已当面致歉并开展培训",
                          status="closed", volunteer_id=volunteers[7].id))
    session.add_all([ProgrammeDocument(year=today.year, kind="rule", title="浦锦街道平安志愿者管理办法（演示）"),
                     ProgrammeDocument(year=today.year, kind="plan", title=f"{today.year}年春节烟花爆竹安全管控巡逻方案（演示）")])
