"""Attendee exports (CSV and XLSX) and the attendance report upload."""

from flask import Blueprint

bp = Blueprint("organiser_exports", __name__, url_prefix="/admin")
