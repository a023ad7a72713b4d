"""All models, imported here so Alembic and the app see every table."""
from models.attendance import Attendance, AttendanceCredit, HourAdjustment, ScanRecord
from models.audit import CoordinatorAction, PersonalDataExport
from models.channels import ContactPreference, DeliveryAttempt, TeamRobot
from models.event import Assignment, Event, Shift
from models.exports import ExportJob
from models.indicator_snapshot import IndicatorMarks, IndicatorSnapshot
from models.messaging import (ChatLink, ChatLinkToken, Message, MessageRecipient, NoticeDraft, OutboxItem,
                              SurveyAnswer, SurveyComment, SurveyRound)
from models.point import PatrolPoint
from models.programme import (BudgetLine, Complaint, EquipmentDelivery, EquipmentIssue, Expenditure,
                              InsuranceCover, InsurancePolicy, JobRun, ProgrammeDocument, ProgrammeYear)
from models.signin import AppSetting, Device, LoginLink, SigninCode, SigninFailure, SmsCodeRequest
from models.user import CoordSession, User
from models.volunteer import Volunteer

__all__ = [
    "CoordinatorAction", "ExportJob", "IndicatorMarks", "IndicatorSnapshot",
    "BudgetLine", "Complaint", "EquipmentDelivery", "EquipmentIssue", "Expenditure", "InsuranceCover",
    "InsurancePolicy", "JobRun", "ProgrammeDocument", "ProgrammeYear",
    "ChatLink", "ChatLinkToken", "Message", "MessageRecipient", "NoticeDraft", "OutboxItem", "SurveyAnswer", "SurveyComment",
    "SurveyRound",
    "AppSetting", "Assignment", "AttendanceCredit", "Device", "LoginLink", "Attendance", "Event", "HourAdjustment", "PatrolPoint", "PersonalDataExport",
    "ScanRecord", "Shift", "User", "Volunteer", "CoordSession", "SigninCode", "SigninFailure", "SmsCodeRequest",
    "ContactPreference", "DeliveryAttempt", "TeamRobot",
]
