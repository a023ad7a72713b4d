"""All models, imported here so Alembic and the app see every table."""
from models.attendance import Attendance, HourAdjustment, ScanRecord
from models.audit import PersonalDataExport
from models.event import Assignment, Event, Shift
from models.point import PatrolPoint
from models.user import User
from models.volunteer import Volunteer

__all__ = [
    "Assignment", "Attendance", "Event", "HourAdjustment", "PatrolPoint", "PersonalDataExport",
    "ScanRecord", "Shift", "User", "Volunteer",
]
