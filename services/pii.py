"""Personal data under PIPL: ID-card numbers encrypted at rest, shown masked, exports logged."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crypto import DataCipher

from models.audit import PersonalDataExport
from services.clock import SHANGHAI, from_local, local_date
from services.errors import DomainError
from services.i18n import _

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_SCI_RE = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.IGNORECASE)


def normalise_id_number(raw: object) -> str:
    """Validate a resident ID-card number (GB 11643) and return it upper-cased.

    Excel turns an 18-digit number into a float and shows it in scientific notation, silently
    losing the last digits; that case gets its own message, since the fix is in the spreadsheet.
    """
    if isinstance(raw, float) or (isinstance(raw, int) and not isinstance(raw, bool)):
        raise DomainError("id_number_numeric",
                          _("身份证号被存成了数字（Excel 会丢失末尾几位），请把该列设为“文本”格式后重新填写"))
    value = str(raw).strip().replace(" ", "").upper()
    if _SCI_RE.match(value):
        raise DomainError("id_number_scientific",
                          _("身份证号是科学计数法（如 3.10E+17），末尾数字已丢失，请把该列设为“文本”格式后重新填写"))
    if len(value) != 18:
        raise DomainError("id_number_length", _("身份证号应为 18 位，实际 %(n)d 位", n=len(value)))
    if not _ID_RE.match(value):
        raise DomainError("id_number_format", _("身份证号只能是 17 位数字加 1 位数字或 X"))
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise DomainError("id_number_birthdate", _("身份证号中的出生日期无效")) from None
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS))
    if _CHECK_CHARS[total % 11] != value[17]:
        raise DomainError("id_number_checksum", _("身份证号校验位不正确，请核对"))
    return value


def mask_id_number(value: str) -> str:
    """`310104199001011234` → `3101**********1234`."""
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


class PersonalDataCipher(DataCipher):
    """The cipher of `crypto.py`, whose refusal is the domain's: a translated `DomainError`."""

    def _mismatch(self) -> Exception:
        return DomainError("data_key_mismatch",
                           _("无法解密身份证号：数据密钥与加密时不同（请恢复 instance/data_key）"))


# At most this many ID numbers of one uploaded file may share a masked form (first 4 and last 4
# characters). Guessing one person's number from its masked form means trying thousands of
# numbers with the same masked form; a real list of 500 people has 4 such numbers with odds of
# about 1 in 400 (docs/imports.md).
MAX_SAME_MASK = 3


def near_identical_ids(id_numbers: list[str]) -> tuple[str, int] | None:
    """The first masked form shared by more than MAX_SAME_MASK numbers of a file, with its count."""
    counts: dict[str, int] = {}
    for value in id_numbers:
        masked = mask_id_number(value)
        counts[masked] = counts.get(masked, 0) + 1
    for masked, n in counts.items():
        if n > MAX_SAME_MASK:
            return masked, n
    return None


def near_identical_error(found: tuple[str, int]) -> DomainError:
    return DomainError("id_numbers_near_identical",
                       _("文件中有 %(n)d 个身份证号打码后相同（%(m)s），超过 %(k)d 个。为防止用文件试出他人的身份证号，"
                         "此文件不予导入；如确有需要，请联系管理员。", n=found[1], m=found[0], k=MAX_SAME_MASK))


def same_name(typed: object, stored: str) -> bool:
    """Names compared the way people type them: spaces (also full-width) and the middle dot ignored."""
    def norm(value: object) -> str:
        return "".join(str(value or "").split()).replace("\u3000", "").replace("·", "").replace("•", "").casefold()
    return bool(norm(typed)) and norm(typed) == norm(stored)


def record_export(session: Session, *, actor: str, what: str, record_count: int,
                  detail: str | None = None, at: datetime | None = None) -> PersonalDataExport:
    """Log an export that includes ID numbers. Call it in the same transaction as the export."""
    entry = PersonalDataExport(actor=actor, what=what, record_count=record_count, detail=detail)
    if at is not None:
        entry.at = at
    session.add(entry)
    return entry


ID_MATCHING_IMPORT = "id_matching_import"
# How many ID-matching imports (roster or insured list) one account without the right to see full
# ID numbers may run per local day (config ID_IMPORT_DAILY_LIMIT): each file can test a few
# numbers per target, so the number of files is what bounds guessing.
DEFAULT_ID_IMPORT_DAILY_LIMIT = 5


def check_id_import_quota(session: Session, *, actor: str, limit: int, now: datetime,
                          zone: ZoneInfo | None = None) -> None:
    """Refuse an ID-matching import once `actor` has run `limit` of them today (local day)."""
    zone = zone or SHANGHAI
    day_start = from_local(datetime.combine(local_date(now, zone), time()), zone)
    done = session.scalar(select(func.count(PersonalDataExport.id)).where(
        PersonalDataExport.actor == actor, PersonalDataExport.what == ID_MATCHING_IMPORT,
        PersonalDataExport.at >= day_start, PersonalDataExport.at < day_start + timedelta(days=1))) or 0
    if done >= limit:
        raise DomainError("id_import_daily_limit",
                          _("您今天已导入 %(n)d 个含身份证号的文件，达到每日上限。请明天再试，或请管理员导入。", n=done))
