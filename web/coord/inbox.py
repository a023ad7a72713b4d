"""A coordinator's (or team leader's) own messages: leave requests from volunteers arrive here
as well as in their Telegram chat, since many in the office do not use Telegram."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from extensions import db
from services.messaging import mark_user_read, user_inbox
from web.auth import current_user
from web.params import ids as parse_ids
from web.coord import protect
from web.runtime import clock

bp = protect(Blueprint("coord_inbox", __name__, url_prefix="/coord/inbox"), leaders=True)


@bp.get("/")
def index():
    items = user_inbox(db.session, current_user().id)
    return render_template("coord/inbox.html", items=items, unread={i.message_id for i in items if i.read_at is None})


@bp.post("/read")
def read():
    ids = parse_ids(request.form.getlist("message_id"))
    mark_user_read(db.session, current_user().id, ids, clock=clock())
    return redirect(url_for(".index"))
