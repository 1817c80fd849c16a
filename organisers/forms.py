"""Forms of the organiser console."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField


class LoginForm(FlaskForm):
    """email, password, csrf_token."""

    email = EmailField("Email")
    password = PasswordField("Password")
