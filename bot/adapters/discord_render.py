"""Neutral messages, buttons and forms rendered for Discord (DESIGN.md §2, §3).

Buttons carry a stable custom id, `kindred:<guild id>:<action id>:<value>`, and
are dispatched by `KindredButton`, a `DynamicItem` matched by that template: no
view state is kept per message, so a button on a message sent before a restart
keeps working. The guild id rides along because a click in a DM has no guild.

Every message is sent with an explicit allow-list of mentions: nobody unless the
message lists them, never @everyone, @here or roles.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import discord

from bot.core.mentions import escape_for_discord, render
from bot.core.platform import Button, ButtonStyle, Message, Modal, PlatformError

CUSTOM_ID_PREFIX = "kindred"
CUSTOM_ID_PATTERN = re.compile(
    rf"^{CUSTOM_ID_PREFIX}:(?P<workspace>[0-9]+):(?P<action>[^:]+):(?P<value>.*)$", re.DOTALL
)
# Discord's limits (https://discord.com/developers/docs/resources/message).
MAX_CONTENT = 2000
MAX_CUSTOM_ID = 100
MAX_BUTTONS = 25
MAX_BUTTON_LABEL = 80
MAX_MODAL_TITLE = 45
MAX_MODAL_FIELDS = 5
MAX_FIELD_LABEL = 45
MAX_PLACEHOLDER = 100
MAX_TEXT_INPUT = 4000
BUTTON_STYLES = {
    ButtonStyle.DEFAULT: discord.ButtonStyle.secondary,
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.DANGER: discord.ButtonStyle.danger,
}


@dataclass(frozen=True, slots=True)
class CustomId:
    workspace_id: str
    action_id: str
    value: str


def encode_custom_id(workspace_id: str, action_id: str, value: str) -> str:
    custom_id = f"{CUSTOM_ID_PREFIX}:{workspace_id}:{action_id}:{value}"
    if len(custom_id) > MAX_CUSTOM_ID:
        raise PlatformError(
            f"the button '{action_id}' carries a {len(value)}-character value; Discord custom "
            f"ids hold {MAX_CUSTOM_ID} characters, so keep button values short (an id, not text)"
        )
    return custom_id


def decode_custom_id(custom_id: str) -> CustomId | None:
    match = CUSTOM_ID_PATTERN.match(custom_id)
    if match is None:
        return None
    return CustomId(match["workspace"], match["action"], match["value"])


def render_text(text: str) -> str:
    """Neutral markup is Discord Markdown already; only member text needs defusing."""
    return render(text, escape_for_discord)


def split_content(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends where possible."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        rest = line
        while len(rest) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(rest[:limit])
            rest = rest[limit:]
        if len(current) + len(rest) > limit:
            pieces.append(current)
            current = ""
        current += rest
    if current:
        pieces.append(current)
    return [piece.rstrip("\n") or "\u200b" for piece in pieces]


def allowed_mentions(message: Message) -> discord.AllowedMentions:
    """Only the people the message is meant to ping; never everyone, here or roles."""
    if not message.mentions:
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(
        everyone=False,
        users=[discord.Object(int(user_id)) for user_id in message.mentions if user_id.isdigit()],
        roles=False,
        replied_user=False,
    )


def attachment_file(message: Message) -> discord.File | None:
    """A fresh file each call: discord.py consumes the stream when it sends."""
    if message.attachment is None:
        return None
    return discord.File(
        io.BytesIO(message.attachment.content),
        message.attachment.filename,
        description=message.attachment.alt_text or None,
    )


class KindredButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=CUSTOM_ID_PATTERN
):
    """Every Kindred button, whenever it was sent: the click is handed to the adapter
    through the client's `kindred_button` event."""

    def __init__(self, target: CustomId, label: str = "", style: discord.ButtonStyle | None = None):
        custom_id = encode_custom_id(target.workspace_id, target.action_id, target.value)
        super().__init__(
            discord.ui.Button(
                label=label[:MAX_BUTTON_LABEL] or target.action_id,
                style=style or discord.ButtonStyle.secondary,
                custom_id=custom_id,
            )
        )
        self.target = target

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[discord.ui.View],
        match: re.Match[str],
        /,
    ) -> KindredButton:
        label = item.label if isinstance(item, discord.ui.Button) else ""
        style = item.style if isinstance(item, discord.ui.Button) else None
        target = CustomId(match["workspace"], match["action"], match["value"])
        return cls(target, label or "", style)

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        interaction.client.dispatch("kindred_button", interaction, self.target)


def button_view(workspace_id: str, buttons: tuple[Button, ...]) -> discord.ui.View | None:
    if not buttons:
        return None
    if len(buttons) > MAX_BUTTONS:
        raise PlatformError(f"a Discord message holds at most {MAX_BUTTONS} buttons")
    view = discord.ui.View(timeout=None)
    for button in buttons:
        target = CustomId(workspace_id, button.action_id, button.value)
        view.add_item(KindredButton(target, button.label, BUTTON_STYLES[button.style]))
    return view


@dataclass(frozen=True)
class Rendered:
    """One neutral message as Discord sends it: the content in pieces of at most
    2,000 characters; buttons and the file go with the last piece."""

    pieces: list[str]
    message: Message
    workspace_id: str

    @property
    def allowed_mentions(self) -> discord.AllowedMentions:
        return allowed_mentions(self.message)

    def view(self) -> discord.ui.View | None:
        return button_view(self.workspace_id, self.message.buttons)

    def file(self) -> discord.File | None:
        return attachment_file(self.message)

    @property
    def idempotency_key(self) -> str | None:
        return self.message.idempotency_key


def render_message(workspace_id: str, message: Message) -> Rendered:
    # Validate the buttons now, before any piece is sent.
    button_view(workspace_id, message.buttons)
    return Rendered(split_content(render_text(message.text)), message, workspace_id)


def build_modal(workspace_id: str, modal: Modal) -> discord.ui.Modal:
    """A form whose submission comes back as `kindred:<guild>:<callback id>:<value>`."""
    if len(modal.fields) > MAX_MODAL_FIELDS:
        raise PlatformError(f"a Discord form holds at most {MAX_MODAL_FIELDS} fields")
    form = discord.ui.Modal(
        title=modal.title[:MAX_MODAL_TITLE],
        custom_id=encode_custom_id(workspace_id, modal.callback_id, modal.value),
    )
    for field in modal.fields:
        form.add_item(
            discord.ui.TextInput(
                label=field.label[:MAX_FIELD_LABEL],
                custom_id=field.field_id,
                style=discord.TextStyle.paragraph if field.multiline else discord.TextStyle.short,
                required=field.required,
                max_length=min(field.max_length or MAX_TEXT_INPUT, MAX_TEXT_INPUT),
                placeholder=field.placeholder[:MAX_PLACEHOLDER] or None,
            )
        )
    # Submissions are routed by custom id (so a form opened before a restart still
    # submits); stopping it keeps discord.py from also tracking it in memory.
    form.stop()
    return form


def submitted_values(data: object) -> dict[str, str]:
    """Field values of a modal submission, whatever the component nesting."""
    values: dict[str, str] = {}
    if isinstance(data, dict):
        if "custom_id" in data and isinstance(data.get("value"), str):
            values[str(data["custom_id"])] = data["value"]
        for key in ("components", "component"):
            if key in data:
                values.update(submitted_values(data[key]))
    elif isinstance(data, list):
        for item in data:
            values.update(submitted_values(item))
    return values
