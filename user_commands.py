"""``flask users ...``: the accounts from the server's shell, for whoever runs the machine
(and has perhaps lost the admin account): list, create, deactivate, activate, make-admin,
and reset-link, which prints a one-time sign-in URL."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

import accounts
import db_commands
from helpers import ValidationError

users = AppGroup("users", help="List and manage the chat's accounts.")


def _find(username: str) -> dict:
    user = db_commands.get_user_by_name(username)
    if user is None:
        raise click.ClickException(f"There is no user named {username!r}.")
    return user


@users.command("list")
def list_users() -> None:
    """Every account: name, role, and whether it is deactivated."""
    for user in db_commands.list_users_for_admin():
        state = "deactivated" if user["deactivated_at"] else "active"
        click.echo(f"{user['username']}\t{user['role']}\t{state}")


@users.command("create")
@click.argument("username")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--admin", is_flag=True, help="Make the account an admin.")
def create(username: str, password: str, admin: bool) -> None:
    """Create an account (the first one is always an admin)."""
    try:
        user_id = accounts.do_create_user(username, password, admin=admin)
    except ValidationError as error:
        raise click.ClickException(str(error)) from None
    role = db_commands.get_role(user_id)
    click.echo(f"Created {username} ({role}).")


@users.command("deactivate")
@click.argument("username")
def deactivate(username: str) -> None:
    """Deactivate an account: no login, its sockets closed, its messages kept."""
    accounts.do_deactivate(_find(username)["id"])
    click.echo(f"Deactivated {username}.")


@users.command("activate")
@click.argument("username")
def activate(username: str) -> None:
    """Let a deactivated account log in again."""
    accounts.do_activate(_find(username)["id"])
    click.echo(f"Activated {username}.")


@users.command("make-admin")
@click.argument("username")
def make_admin(username: str) -> None:
    """Make an account an admin."""
    accounts.do_make_admin(_find(username)["id"])
    click.echo(f"{username} is an admin.")


@users.command("reset-link")
@click.argument("username")
def reset_link(username: str) -> None:
    """Print a one-time sign-in URL (valid one hour, used once); it leads to a new password."""
    user = _find(username)
    if user["deactivated_at"]:
        raise click.ClickException(f"{username} is deactivated: activate the account first.")
    click.echo(accounts.public_url(accounts.make_sign_in_path(user["id"])))


def init_app(app: Flask) -> None:
    """Register ``flask users``."""
    app.cli.add_command(users)
