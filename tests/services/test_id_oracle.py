"""No ID-number oracle (issue 10 item 1).

Attack: a coordinator sees a volunteer's name and masked ID number (3101**********1234). The
numbers with that masked form are a few tens of thousands; uploading them as an insurer's list
used to report every unmatched row, so the one row *not* reported was the full ID number.
"""
from __future__ import annotations

import random
from datetime import date

from sqlalchemy import func, select

from models import InsuranceCover, PersonalDataExport, Volunteer
from services.imports import import_volunteers
from services.pii import MAX_SAME_MASK, mask_id_number
from services.programme import create_policy, import_insured
from tests.factories import csv_bytes, id_number

SECRET = id_number("31011219800101123")


def _victim(session, cipher) -> Volunteer:
    vol = Volunteer(name="丙一", phone="13922220001", joined_on=date(2025, 1, 1), id_number_enc=cipher.encrypt(SECRET),
                    id_number_hash=cipher.blind_index(SECRET), id_number_masked=mask_id_number(SECRET))
    session.add(vol)
    session.commit()
    return vol


def _policy(session) -> int:
    from decimal import Decimal
    return create_policy(session, insurer="某保险", policy_no="PA-1", cover_start=date(2025, 1, 1),
                         cover_end=date(2025, 12, 31), premium_per_person=Decimal("10")).id


def candidates(masked: str, n: int, seed: int = 7) -> list[str]:
    """Valid ID numbers with the given masked form (what an attacker would enumerate)."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        body = masked[:4] + f"{rng.randint(1, 99):02d}" + f"19{rng.randint(50, 99)}" + f"{rng.randint(1, 12):02d}" \
            + f"{rng.randint(1, 28):02d}" + masked[-4:-1]
        full = id_number(body)
        if full[-1] == masked[-1]:
            out.add(full)
    return sorted(out)


def test_candidate_list_for_one_masked_form_is_refused_without_any_row_verdict(session, cipher):
    vol = _victim(session, cipher)
    pid = _policy(session)
    guesses = candidates(vol.id_number_masked, 40) + [SECRET]
    rows = [["姓名", "身份证号"]] + [["丙一", g] for g in guesses]
    report = import_insured(session, pid, csv_bytes(rows), "list.csv", cipher=cipher, actor="user:2:coord")
    assert not report.ok
    assert [(e.row, e.code) for e in report.errors] == [(1, "id_numbers_near_identical")]
    assert SECRET not in " ".join(report.lines())
    assert session.scalar(select(func.count(InsuranceCover.id))) == 0
    log = session.scalars(select(PersonalDataExport)).all()
    assert [(e.actor, e.what, e.record_count) for e in log] == [("user:2:coord", "id_matching_import", 41)]


def test_up_to_the_limit_rows_are_looked_up_and_each_miss_says_the_same_thing(session, cipher):
    vol = _victim(session, cipher)
    pid = _policy(session)
    wrong = candidates(vol.id_number_masked, MAX_SAME_MASK - 1)
    rows = [["姓名", "身份证号"], ["丙一", wrong[0]], ["丙一", wrong[1]], ["某某", SECRET]]
    report = import_insured(session, pid, csv_bytes(rows), "list.csv", cipher=cipher)
    # The right number with the wrong name is a miss, worded like a wrong number.
    assert [e.row for e in report.errors] == [2, 3, 4]
    assert len({(e.code, e.message) for e in report.errors}) == 1
    assert session.scalar(select(func.count(InsuranceCover.id))) == 0


def test_id_number_matches_with_the_name_and_an_admin_may_match_by_id_alone(session, cipher):
    _victim(session, cipher)
    pid = _policy(session)
    no_name = csv_bytes([["身份证号"], [SECRET]])
    assert not import_insured(session, pid, no_name, "l.csv", cipher=cipher).ok
    with_name = csv_bytes([["身份证号", "姓名"], [SECRET, " 丙 一 "]])
    assert import_insured(session, pid, with_name, "l.csv", cipher=cipher).created == 1
    other = _policy_two(session)
    assert import_insured(session, other, no_name, "l.csv", cipher=cipher, can_see_id_numbers=True).created == 1
    assert session.scalar(select(func.count(PersonalDataExport.id))) == 3


def _policy_two(session) -> int:
    from decimal import Decimal
    return create_policy(session, insurer="某保险", policy_no="PA-2", cover_start=date(2025, 1, 1),
                         cover_end=date(2025, 12, 31), premium_per_person=Decimal("10")).id


def test_roster_id_taken_error_shows_no_phone_digits_and_the_import_is_logged(session, cipher):
    # The precise "taken" error is an admin's only (review item 2); a non-admin learns nothing.
    _victim(session, cipher)
    rows = [["姓名", "手机号", "身份证号"], ["乙", "13900000012", SECRET]]
    report = import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher, actor="user:2:coord",
                               can_see_id_numbers=True)
    assert [e.code for e in report.errors] == ["id_number_taken"]
    text = " ".join(report.lines())
    assert "0001" not in text and "13922220001" not in text and SECRET not in text
    entry = session.scalar(select(PersonalDataExport))
    assert (entry.actor, entry.what, entry.record_count) == ("user:2:coord", "id_matching_import", 1)


def test_roster_with_near_identical_id_numbers_is_refused(session, cipher):
    guesses = candidates("3101**********1234", MAX_SAME_MASK + 1)
    rows = [["姓名", "手机号", "身份证号"]] + [[f"某{i}", f"1390000010{i}", g] for i, g in enumerate(guesses)]
    report = import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher)
    assert [(e.row, e.code) for e in report.errors] == [(1, "id_numbers_near_identical")]
    assert session.scalar(select(func.count(Volunteer.id))) == 0
    ok = import_volunteers(session, csv_bytes(rows[:-1]), "r.csv", cipher=cipher)
    assert ok.ok, ok.lines()


# --- review item 2: the roster import is no oracle for a non-admin -----------------------------

def _outcome(report) -> tuple:
    return (report.ok, report.created, report.updated, report.unchanged, report.lines(), report.notice_lines())


def test_a_non_admin_roster_import_reveals_nothing_about_a_guessed_id_number(session, cipher):
    """Attack: rows that pair a fresh phone (or the victim's own phone) with each guess of the
    victim's number, with a wrong name. Right and wrong guesses must look exactly alike."""
    victim = _victim(session, cipher)
    wrong = candidates(victim.id_number_masked, 2)
    wrong = next(g for g in wrong if g != SECRET)
    right = import_volunteers(session, csv_bytes([["姓名", "手机号", "身份证号"], ["乙", "13900000012", SECRET]]),
                              "r.csv", cipher=cipher, actor="user:2:coord")
    miss = import_volunteers(session, csv_bytes([["姓名", "手机号", "身份证号"], ["丁", "13900000013", wrong]]),
                             "r.csv", cipher=cipher, actor="user:2:coord")
    assert _outcome(right) == _outcome(miss) == (True, 1, 0, 0, [], [])
    held = session.scalar(select(Volunteer).where(Volunteer.phone == "13900000012"))
    other = session.scalar(select(Volunteer).where(Volunteer.phone == "13900000013"))
    # Both show their masked form the same way; only the clash waits for an admin, without a hash.
    assert held.id_number_masked == victim.id_number_masked and other.id_number_masked == mask_id_number(wrong)
    assert (held.id_number_hash, held.id_number_check) == (None, True)
    assert other.id_number_hash is not None and not other.id_number_check
    assert session.get(Volunteer, victim.id).id_number_hash == cipher.blind_index(SECRET)
    # The victim's own phone with a right or a wrong guess: both "updated".
    own_right = import_volunteers(session, csv_bytes([["姓名", "手机号", "身份证号"], ["丙一", "13922220001", SECRET]]),
                                  "r.csv", cipher=cipher, actor="user:2:coord")
    assert _outcome(own_right) == (True, 0, 1, 0, [], [])


def test_an_admin_checks_a_held_id_number(session, cipher):
    from services.errors import DomainError
    from services.imports import confirm_held_id_number

    victim = _victim(session, cipher)
    import_volunteers(session, csv_bytes([["姓名", "手机号", "身份证号"], ["乙", "13900000012", SECRET]]),
                      "r.csv", cipher=cipher, actor="user:2:coord")
    held = session.scalar(select(Volunteer).where(Volunteer.phone == "13900000012"))
    try:
        confirm_held_id_number(session, held.id, cipher=cipher)
        raise AssertionError("a clash must be reported to the admin")
    except DomainError as exc:
        assert exc.code == "id_number_taken" and "13922220001" in exc.message
    victim.id_number_hash = None
    victim.id_number_enc = victim.id_number_masked = None
    session.commit()
    confirm_held_id_number(session, held.id, cipher=cipher)
    assert (held.id_number_hash, held.id_number_check) == (cipher.blind_index(SECRET), False)


def test_id_matching_imports_are_capped_per_non_admin_per_day(session, cipher):
    from datetime import datetime, timezone

    from services.clock import fixed_clock

    day = fixed_clock(datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc))
    rows = [["姓名", "手机号", "身份证号"], ["乙", "13900000012", SECRET]]
    for _i in range(3):
        assert import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher, actor="user:2:coord",
                                 clock=day, id_import_daily_limit=3).ok
    refused = import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher, actor="user:2:coord",
                                clock=day, id_import_daily_limit=3)
    assert [e.code for e in refused.errors] == ["id_import_daily_limit"] and "每日上限" in refused.lines()[0]
    # Another account, an admin, a file without ID numbers, and the next day are not refused.
    assert import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher, actor="user:3:coord",
                             clock=day, id_import_daily_limit=3).ok
    assert import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher, actor="user:2:coord",
                             clock=day, id_import_daily_limit=3, can_see_id_numbers=True).ok
    assert import_volunteers(session, csv_bytes([["姓名", "手机号"], ["乙", "13900000012"]]), "r.csv", cipher=cipher,
                             actor="user:2:coord", clock=day, id_import_daily_limit=3).ok
    tomorrow = fixed_clock(datetime(2026, 3, 2, 17, 0, tzinfo=timezone.utc))  # 01:00 in Shanghai
    assert import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher, actor="user:2:coord",
                             clock=tomorrow, id_import_daily_limit=3).ok


def test_the_roster_page_holds_a_clashing_number_for_a_coordinator(app, client, auth):
    import io

    from extensions import db
    from keys import data_cipher
    from tests.conftest import csrf_from

    with app.app_context():
        _victim(db.session, data_cipher())
    auth.login()
    data = csv_bytes([["姓名", "手机号", "身份证号"], ["乙", "13900000012", SECRET]])
    resp = client.post("/coord/volunteers/import", data={"csrf_token": csrf_from(client, "/coord/volunteers/import"),
                                                         "file": (io.BytesIO(data), "r.csv")},
                       content_type="multipart/form-data", follow_redirects=True)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "导入成功" in text and "另一名志愿者" not in text
