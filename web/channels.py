"""Web adapters for the channels: a volunteer's channel choice, SMS short links (inbox item, one-tap
survey) and the office's messaging settings (admins)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from extensions import db, limiter
from keys import data_cipher
from services.channels import settings as cs
from services.channels.costs import cost_status
from services.channels.office import save_settings, template_rows
from services.channels.signin_sms import queue_signin_sms
from services.sms.templates import sms_ready
from services.channels.prefs import ORDERS, channel_label, my_preferences, set_preferences
from services.channels.survey_links import resolve_survey_token
from services.channels.wecom import remove_team_robot, set_team_robot, team_robots
from services.errors import DomainError
from services.i18n import _
from services.sms.providers import provider_from_config
from services.surveys import SCALE, answer, my_answer
from services.volunteers import teams
from web.auth import current_user, current_volunteer
from web.coord import protect
from web.runtime import clock

bp = Blueprint("channels", __name__)
admin_bp = protect(Blueprint("coord_messaging", __name__, url_prefix="/coord/messaging"), admin=True)
staff_bp = protect(Blueprint("coord_channels", __name__, url_prefix="/coord/channels"))


@staff_bp.post("/login-sms/<int:volunteer_id>")
def login_sms(volunteer_id: int):
    """Send the volunteer a one-time web sign-in link by SMS (made when the SMS goes out)."""
    try:
        queue_signin_sms(db.session, volunteer_id, clock=clock())
        flash(_("登录链接将通过短信发送"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("coord_volunteers.detail", volunteer_id=volunteer_id))


@bp.post("/me/channels")
def my_channels():
    vol = current_volunteer()
    if vol is None:
        return redirect(url_for("signin.me"))
    try:
        set_preferences(db.session, vol.id, order=request.form.get("order") or None,
                        sms_opt_out=request.form.get("sms_opt_out") == "1", clock=clock())
        flash(_("已保存接收方式"), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("signin.me"))


@bp.get("/i/<int:message_id>")
def inbox_item(message_id: int):
    """The short link in an SMS: the inbox (sign-in first on a new phone)."""
    return redirect(url_for("signin.my_inbox") + f"#m{message_id}")


@bp.route("/s/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def survey_link(token: str):
    """One tap, no sign-in: the SMS link is the person's key to this round only."""
    try:
        link = resolve_survey_token(db.session, current_app.config["SECRET_KEY"], token, clock=clock())
    except DomainError as exc:
        return render_template("volunteer/refused.html", error=exc), 410 if exc.code == "survey_closed" else 404
    done = None
    if request.method == "POST":
        try:
            done = answer(db.session, link.round_id, link.volunteer_id, int(request.form.get("score", "0")),
                          channel="sms", clock=clock())
        except (DomainError, ValueError) as exc:
            flash(exc.message if isinstance(exc, DomainError) else _("请选择满意程度"), "error")
    mine = my_answer(db.session, link.round_id, link.volunteer_id)
    return render_template("volunteer/survey_link.html", link=link, mine=mine, scale=SCALE, done=done)


@admin_bp.route("", methods=["GET", "POST"])
def settings_page():
    user = current_user()
    base = current_app.config.get("WECOM_WEBHOOK_BASE") or "https://qyapi.weixin.qq.com/"
    if request.method == "POST":
        try:
            if request.form.get("form") == "robot":
                set_team_robot(db.session, data_cipher(), team=request.form.get("team", ""),
                               url=request.form.get("url", ""), by=f"user:{user.id}", base=base)
                flash(_("已保存群机器人"), "success")
            elif request.form.get("form") == "robot_remove":
                remove_team_robot(db.session, request.form.get("team", ""))
                flash(_("已删除群机器人"), "success")
            else:
                save_settings(db.session, request.form, by=f"user:{user.id}")
                flash(_("已保存消息设置"), "success")
            return redirect(url_for(".settings_page"))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    provider = provider_from_config(current_app.config)
    values = {key: cs.get(db.session, key) for key in cs.DEFAULTS}
    return render_template("coord/messaging.html", values=values, templates=template_rows(db.session),
                           orders=[(o, " → ".join(channel_label(c) for c in o.split(","))) for o in ORDERS],
                           provider=provider.name if provider else None, robots=team_robots(db.session),
                           teams=teams(db.session), costs=cost_status(db.session, clock=clock()))


def preferences_for(volunteer_id: int):
    return my_preferences(db.session, volunteer_id)


def register(app) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(staff_bp)
    app.jinja_env.globals["channel_label"] = channel_label
    app.add_template_filter(channel_label, "channel_label")
    app.jinja_env.globals["channel_orders"] = lambda: [(o, " → ".join(channel_label(c) for c in o.split(",")))
                                                       for o in ORDERS]
    app.jinja_env.globals["my_channel_preferences"] = preferences_for
    app.jinja_env.globals["sms_available"] = lambda: sms_ready(db.session)

