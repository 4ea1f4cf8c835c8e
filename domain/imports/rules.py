"""Reading an import file and checking each post in it. Pure functions: no I/O.

A CSV has one row per variant. Rows with the same `post_key` (anywhere in the file) are one
post; a row without a key is a post of its own. Post-level cells (title, labels, campaign,
time, schedule) may be given on any of the post's rows, once or repeated identically. A JSON
file is a list of posts shaped like createPost's body (`ImportPost`).

Every problem names the row as the spreadsheet shows it (the header is row 1; a cell with a
line break does not start a new row) and the column, or for JSON the post's position from 1
and the field's path. A problem is *blocking* when it keeps its post out of the import:
anything that cannot be read or found, and, for a post to schedule (`schedule` yes), any
break of its networks' rules. A draft may break them: it is imported, not ready to schedule,
as createPost allows ("saving an invalid draft is allowed, scheduling an invalid one is not").
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from domain.content import rules as content_rules
from domain.content import schemas as cs
from domain.content.rules import OPTIONS, MediaFacts, Severity, VariantDraft
from domain.imports.schemas import ImportPost
from domain.networks.adapters.base import Network

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5_000
# Up to this many rows the import runs within the request (201); beyond, as a job (202).
SYNC_ROWS = 200
# A queued or running job whose heartbeat (updated_at) is older than this died with its process.
STALE_AFTER = timedelta(minutes=10)
# Problems kept on the job; the counts still count them all.
MAX_PROBLEMS_KEPT = 10_000
# Scheduling refuses a time less than this far ahead (as schedulePost does).
SCHEDULE_MARGIN = timedelta(seconds=60)
MAX_VARIANTS = 20
THREAD_SEPARATOR = "||"

POST_COLUMNS = ("post_key", "title", "labels", "campaign", "campaign_id", "scheduled_at", "date", "time", "schedule")
VARIANT_COLUMNS = ("account", "text", "media_ids")
REQUIRED_COLUMNS = ("account",)


def _option_kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for options in OPTIONS.values():
        for name, option in options.items():
            kinds.setdefault(name, option.kind)
    return kinds


OPTION_KINDS = _option_kinds()
OPTION_COLUMNS = tuple(f"opt_{name}" for name in sorted(OPTION_KINDS))
COLUMNS = POST_COLUMNS + VARIANT_COLUMNS + OPTION_COLUMNS

_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0", ""}


class FileInvalid(Exception):
    """The file as a whole cannot be read (not text, not CSV or JSON): a 422, no job."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    rule: str
    message: str
    severity: str = Severity.ERROR.value
    blocking: bool = True

    def public(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "rule": self.rule, "message": self.message,
                "severity": self.severity, "blocking": self.blocking}


Locate = Callable[[str], tuple[int, str]]


@dataclass
class Source:
    """One post as read from the file, before anything is looked up."""

    rows: list[int]
    post: ImportPost | None
    locate: Locate
    problems: list[Problem] = field(default_factory=list)
    # Paths whose cells could not be read: what depends on them stays quiet.
    failed: set[str] = field(default_factory=set)


@dataclass
class ParsedFile:
    format: str
    total_rows: int
    # Problems of the header or the file: they block every post.
    problems: list[Problem]
    posts: list[Source]


# --- bytes to text -------------------------------------------------------------------------

_SIGNATURES = [
    (b"PK\x03\x04", "This looks like a spreadsheet workbook (XLSX/ODS): save it as 'CSV UTF-8' and upload that"),
    (b"\xd0\xcf\x11\xe0", "This looks like an old Excel workbook (XLS): save it as 'CSV UTF-8' and upload that"),
    (b"%PDF", "This is a PDF: upload a CSV or JSON file"),
    (b"\x89PNG", "This is an image: upload a CSV or JSON file"),
    (b"\xff\xd8\xff", "This is an image: upload a CSV or JSON file"),
    (b"GIF8", "This is an image: upload a CSV or JSON file"),
]


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; anything else is refused clearly."""
    for signature, message in _SIGNATURES:
        if data.startswith(signature):
            raise FileInvalid("not_text", message)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
        if b"\x00" in data:
            raise FileInvalid("not_text", "This is not a text file (it contains NUL bytes): upload a CSV or JSON file")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise FileInvalid("encoding", f"The file is not UTF-8 text (byte {err.start + 1} is not); save it as "
                          "'CSV UTF-8' from the spreadsheet") from None
    if "\x00" in text:
        raise FileInvalid("not_text", "This is not a text file (it contains NUL characters): upload a CSV or JSON file")
    sample = text[:65_536]
    controls = sum(1 for ch in sample if ch not in "\t\n\r" and unicodedata.category(ch) == "Cc")
    if controls > max(4, len(sample) // 200):
        raise FileInvalid("not_text", "This does not look like a text file (too many control characters): "
                          "upload a CSV or JSON file")
    if not text.strip():
        raise FileInvalid("empty", "The file is empty")
    return text


def detect_format(filename: str, content_type: str, text: str) -> str:
    name = filename.lower()
    if name.endswith(".json") or "json" in content_type.lower():
        return "json"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "json" if text.lstrip()[:1] in ("[", "{") else "csv"


def parse(data: bytes, *, filename: str = "", content_type: str = "", fmt: str | None = None) -> ParsedFile:
    text = decode(data)
    fmt = fmt or detect_format(filename, content_type, text)
    return read_json(text) if fmt == "json" else read_csv(text)


# --- CSV -----------------------------------------------------------------------------------


def sniff_delimiter(text: str) -> str:
    """From the header line: headers hold no delimiters, so the most frequent one wins."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def normalise_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _records(text: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text), strict=True)
    records: list[list[str]] = []
    try:
        for record in reader:  # bounded by MAX_BYTES
            records.append(record)
    except csv.Error as err:
        raise FileInvalid("malformed_csv", f"The CSV cannot be read at line {reader.line_num}: {err} "
                          "(is a quote left open?)") from None
    return records


def read_csv(text: str) -> ParsedFile:
    records = _records(text)
    if not records or not any(cell.strip() for cell in records[0]):
        raise FileInvalid("no_header", "The first row must name the columns (download the template: "
                          "GET /v1/imports/template.csv)")
    header = records[0]
    problems: list[Problem] = []
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = normalise_header(raw)
        if not name:
            if any(index < len(r) and r[index].strip() for r in records[1:]):
                problems.append(Problem(1, f"#{index + 1}", "unnamed_column",
                                        f"Column {index + 1} has values but no name in the header"))
            continue
        if name in columns:
            problems.append(Problem(1, raw.strip(), "duplicate_column", f"The column {raw.strip()!r} appears twice"))
            continue
        if name not in COLUMNS:
            problems.append(Problem(1, raw.strip(), "unknown_column", _unknown_column(name)))
            continue
        columns[name] = index
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            problems.append(Problem(1, name, "missing_column", f"The column {name!r} is required: the account "
                                    "each row goes to, as network:handle or the account's id"))

    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    total = 0
    for number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue  # an empty row of the spreadsheet
        total += 1
        cells = {name: record[i] if i < len(record) else "" for name, i in columns.items()}
        extra = [c for c in record[len(header):] if c.strip()]
        key = cells.get("post_key", "").strip() or f"\x00row{number}"
        groups.setdefault(key, []).append((number, cells))
        if extra:
            problems.append(Problem(number, f"#{len(header) + 1}", "extra_cells",
                                    f"The row has {len(record)} cells but the header names {len(header)} columns"))
    if total > MAX_ROWS:
        return ParsedFile("csv", total, problems, [])
    return ParsedFile("csv", total, problems, [_csv_post(rows) for rows in groups.values()])


def _unknown_column(name: str) -> str:
    if name.startswith("opt_"):
        return (f"No network has the option {name[4:]!r}; option columns: {', '.join(OPTION_COLUMNS)}")
    return f"Unknown column {name!r}; the columns are: {', '.join(COLUMNS)}"


_POST_FIELDS = {"title": "title", "labels": "labels", "campaign": "campaign", "campaign_id": "campaign_id",
                "scheduled_at": "scheduled_at", "local_scheduled_at": "date", "schedule": "schedule",
                "variants": "account"}


def _variant_column(path: str) -> str:
    head = re.sub(r"\[\d+\]", "", path.split(".", 1)[0])
    if head == "options":
        parts = path.split(".")
        return "opt_" + (parts[1].split("[", 1)[0] if len(parts) > 1 else "")
    if head == "media":
        return "media_ids"
    if head == "text":
        return "text"
    return "account"


def _csv_post(rows: list[tuple[int, dict[str, str]]]) -> Source:
    first = rows[0][0]
    cells_at: dict[str, tuple[int, str]] = {}
    problems: list[Problem] = []
    failed: set[str] = set()
    values: dict[str, str] = {}

    # Post-level cells: given once, or repeated identically.
    for number, cells in rows:
        for column in POST_COLUMNS[1:]:
            value = cells.get(column, "").strip()
            if not value:
                continue
            if column in values and values[column] != value:
                problems.append(Problem(number, column, "conflicting_value",
                                        f"Row {cells_at[column][0]} of the same post says {values[column]!r}"))
                continue
            if column not in values:
                values[column] = value
                cells_at[column] = (number, column)

    def problem(column: str, rule: str, message: str, path: str) -> None:
        problems.append(Problem(cells_at.get(column, (first, column))[0], column, rule, message))
        failed.add(path)

    post: dict[str, Any] = {}
    if title := values.get("title"):
        if len(title) > 200:
            problem("title", "too_long", f"The title is {len(title)} of 200 characters", "title")
        else:
            post["title"] = title
    if raw_labels := values.get("labels"):
        labels = [label.strip() for label in re.split(r"[;,]", raw_labels) if label.strip()]
        long = [label for label in labels if len(label) > 50]
        if long:
            problem("labels", "too_long", f"The label {long[0][:60]!r} is longer than 50 characters", "labels")
        elif len(labels) > 20:
            problem("labels", "too_many", f"{len(labels)} of 20 labels", "labels")
        else:
            post["labels"] = labels
    if campaign_id := values.get("campaign_id"):
        try:
            post["campaign_id"] = str(UUID(campaign_id))
        except ValueError:
            problem("campaign_id", "invalid_id", "campaign_id must be a campaign's id; use the column "
                    "'campaign' for its name", "campaign_id")
    if campaign := values.get("campaign"):
        post["campaign"] = campaign[:200]
    if scheduled := values.get("scheduled_at"):
        try:
            post["scheduled_at"] = datetime.fromisoformat(scheduled).isoformat()
        except ValueError:
            problem("scheduled_at", "invalid_datetime", f"{scheduled!r} is not a date and time; write "
                    "2026-12-20T09:00:00+01:00, or use the columns date and time (the brand's zone)", "scheduled_at")
    day_text, clock_text = values.get("date"), values.get("time")
    if day_text or clock_text:
        day = clock = None
        if not day_text:
            problem("date", "required", "A time needs its date (YYYY-MM-DD)", "local_scheduled_at")
        elif (day := parse_date(day_text)) is None:
            problem("date", "invalid_date", f"{day_text!r} is not a date: write it as YYYY-MM-DD, for example "
                    "2026-12-20", "local_scheduled_at")
        if not clock_text:
            problem("time", "required", "A date needs its time (HH:MM, the brand's time zone)", "local_scheduled_at")
        elif (clock := parse_time(clock_text)) is None:
            problem("time", "invalid_time", f"{clock_text!r} is not a time: write it as HH:MM, for example 09:30",
                    "local_scheduled_at")
        if day and clock:
            post["local_scheduled_at"] = datetime.combine(day, clock).isoformat()
    if "schedule" in values:
        flag = parse_bool(values["schedule"])
        if flag is None:
            problem("schedule", "invalid_value", f"{values['schedule']!r}: write yes or no", "schedule")
        else:
            post["schedule"] = flag

    variants: list[dict[str, Any]] = []
    variant_rows: list[int] = []
    for number, cells in rows:
        if len(variants) == MAX_VARIANTS:
            problems.append(Problem(number, "post_key", "too_many_variants",
                                    f"A post has at most {MAX_VARIANTS} variants (one per account)"))
            continue
        path = f"variants[{len(variants)}]"
        variant: dict[str, Any] = {}
        account = cells.get("account", "").strip()
        if account:
            variant["account"] = account[:300]
        else:
            failed.add(f"{path}.account")
        if not account and "account" in cells:  # without the column, the header's problem says it
            problems.append(Problem(number, "account", "required", "Each row needs the account it goes to: "
                                    "network:handle (x:panaderiasol) or the account's id"))
        text = cells.get("text", "").replace("\r\n", "\n").replace("\r", "\n").strip()
        if len(text) > 70_000:
            problems.append(Problem(number, "text", "too_long", f"The text is {len(text)} of 70000 characters"))
            failed.add(f"{path}.text")
        elif text:
            variant["text"] = text
        if raw_media := cells.get("media_ids", "").strip():
            media = []
            for item in (m for m in re.split(r"[;,\s]+", raw_media) if m):
                try:
                    media.append({"media_id": str(UUID(item))})
                except ValueError:
                    problems.append(Problem(number, "media_ids", "invalid_id",
                                            f"{item[:60]!r} is not a media id from the brand's library"))
                    failed.add(f"{path}.media")
            variant["media"] = media[:35]
        options: dict[str, Any] = {}
        for column in OPTION_COLUMNS:
            raw = cells.get(column, "").strip()
            if not raw:
                continue
            name = column[4:]
            value = option_value(name, raw)
            if value is None:
                problems.append(Problem(number, column, "invalid_value", f"{raw[:60]!r}: write yes or no"))
                failed.add(f"{path}.options.{name}")
                continue
            options[name] = value
        if options:
            variant["options"] = options
        variants.append(variant)
        variant_rows.append(number)
    post["variants"] = variants

    def locate(path: str) -> tuple[int, str]:
        found = re.match(r"variants\[(\d+)\]\.?(.*)", path)
        if found:
            index = int(found.group(1))
            row = variant_rows[index] if index < len(variant_rows) else first
            return row, _variant_column(found.group(2))
        name = re.sub(r"\[.*", "", path.split(".", 1)[0])
        column = _POST_FIELDS.get(name, name or "post_key")
        return cells_at.get(column, (first, column))

    try:
        parsed: ImportPost | None = msgspec.convert(post, ImportPost, strict=False)
    except msgspec.ValidationError as err:
        row, column = locate(error_path(str(err)))
        problems.append(Problem(row, column, "invalid_value", str(err)))
        parsed = None
    return Source([number for number, _ in rows], parsed, locate, problems, failed)


def parse_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def option_value(name: str, raw: str) -> Any:
    kind = OPTION_KINDS[name]
    if kind == "bool":
        return parse_bool(raw)
    if kind == "parts":
        separator = THREAD_SEPARATOR if name == "thread" else r"[;,]"
        parts = raw.split(separator) if name == "thread" else re.split(separator, raw)
        return [p.replace("\r\n", "\n").strip() for p in parts]
    return raw


_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]00:00(?::00)?)?$")
_TIME = re.compile(r"^(\d{1,2})[:h.](\d{2})(?::(\d{2}))?(?:\s*([ap])\.?\s*m?\.?)?$", re.IGNORECASE)


def parse_date(value: str) -> date | None:
    found = _DATE.match(value.strip())
    if not found:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


def parse_time(value: str) -> time | None:
    found = _TIME.match(value.strip())
    if not found:
        return None
    hour, minute, second = int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)
    if meridiem := (found.group(4) or "").lower():
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "p" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)


def error_path(message: str) -> str:
    """Where msgspec says the error is: `$.variants[0].text` -> variants[0].text; an unknown
    field is named after its parent's path."""
    found = re.search(r"at `\$\.?([^`]*)`", message)
    path = found.group(1) if found else ""
    if unknown := re.search(r"unknown field `([^`]*)`", message):
        path = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
    return path


# --- JSON ----------------------------------------------------------------------------------


def read_json(text: str) -> ParsedFile:
    try:
        items = msgspec.json.decode(text, type=list[msgspec.Raw])
    except msgspec.ValidationError:
        try:
            wrapper = msgspec.json.decode(text, type=dict[str, msgspec.Raw])
            if set(wrapper) - {"posts"}:
                raise FileInvalid("json_shape", "A JSON import is a list of posts, or {\"posts\": [...]}")
            items = msgspec.json.decode(wrapper.get("posts", b"[]"), type=list[msgspec.Raw])
        except msgspec.ValidationError:
            raise FileInvalid("json_shape", "A JSON import is a list of posts, or {\"posts\": [...]}") from None
        except msgspec.DecodeError as err:
            raise FileInvalid("malformed_json", f"The file is not valid JSON: {err}") from None
    except msgspec.DecodeError as err:
        raise FileInvalid("malformed_json", f"The file is not valid JSON: {err}") from None
    if len(items) > MAX_ROWS:
        return ParsedFile("json", len(items), [], [])
    return ParsedFile("json", len(items), [], [_json_post(i + 1, raw) for i, raw in enumerate(items)])


def _json_post(row: int, raw: msgspec.Raw) -> Source:
    def locate(path: str) -> tuple[int, str]:
        return row, path

    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as err:  # a string escape that is not text, say
        return Source([row], None, locate, [Problem(row, "", "malformed_json", f"This post is not valid JSON: {err}")])
    if (where := _nul_path(value, "")) is not None:
        return Source([row], None, locate, [Problem(row, where, "nul_character",
                                                    "Text may not contain NUL characters (\\u0000)")])
    try:
        post = msgspec.json.decode(raw, type=ImportPost)
    except msgspec.ValidationError as err:
        return Source([row], None, locate, [Problem(row, error_path(str(err)), "invalid_value", str(err))])
    return Source([row], post, locate)


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return child
            if (found := _nul_path(item, child)) is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _nul_path(item, f"{path}[{i}]")) is not None:
                return found
    return None


# --- checking a post against what the brand has --------------------------------------------


@dataclass(frozen=True)
class Account:
    id: UUID
    network: Network
    handle: str
    status: str


@dataclass
class Lookups:
    """What the brand has, read once for the whole file."""

    zone: str
    now: datetime
    accounts: dict[UUID, Account]
    campaigns: dict[UUID, str]
    media: dict[UUID, MediaFacts]


@dataclass
class Checked:
    rows: list[int]
    create: cs.PostCreate | None
    schedule: bool
    problems: list[Problem]

    @property
    def blocked(self) -> bool:
        return self.create is None


def wall_clock_to_utc(local: datetime, zone: str) -> tuple[datetime, str | None]:
    """A wall-clock time in a zone: the instant, and 'nonexistent' (skipped by a DST change)
    or 'ambiguous' (happens twice; the first is taken) when it is not plain."""
    tz = ZoneInfo(zone)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    note = None
    if first.utcoffset() != second.utcoffset():
        back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        note = "nonexistent" if back != local else "ambiguous"
    return first.astimezone(UTC), note


def find_account(ref: str, accounts: dict[UUID, Account]) -> tuple[Account | None, str, str]:
    """An account by id or `network:handle`: (account, rule, message) with the rule set on failure."""
    ref = ref.strip()
    try:
        account_id = UUID(ref)
    except ValueError:
        account_id = None
    if account_id is not None:
        found = accounts.get(account_id)
        return (found, "", "") if found else (None, "unknown_account", "No such social account for this brand")
    network, sep, handle = ref.partition(":")
    network, handle = network.strip().lower(), handle.strip().lstrip("@").lower()
    if not sep or not handle or network not in {n.value for n in Network}:
        return None, "invalid_account", (f"{ref[:60]!r}: write network:handle (for example x:panaderiasol) "
                                         "or the account's id")
    matches = [a for a in accounts.values() if a.network.value == network and a.handle.lower() == handle]
    if not matches:
        return None, "unknown_account", f"The brand has no {network} account @{handle}"
    if len(matches) > 1:
        return None, "ambiguous_account", f"The brand has {len(matches)} {network} accounts @{handle}: use the id"
    return matches[0], "", ""


def check_post(source: Source, lookups: Lookups) -> Checked:
    post = source.post
    problems = list(source.problems)
    if post is None:
        return Checked(source.rows, None, False, problems)

    def add(path: str, rule: str, message: str, *, severity: str = Severity.ERROR.value,
            blocking: bool = True) -> None:
        row, column = source.locate(path)
        problems.append(Problem(row, column, rule, message, severity, blocking))

    campaign_id = post.campaign_id
    if campaign_id is not None and campaign_id not in lookups.campaigns:
        add("campaign_id", "unknown_campaign", "No such campaign for this brand")
    if post.campaign:
        wanted = post.campaign.strip()
        try:
            matches = [UUID(wanted)] if UUID(wanted) in lookups.campaigns else []
        except ValueError:
            matches = [cid for cid, name in lookups.campaigns.items() if name.strip().lower() == wanted.lower()]
        if not matches:
            add("campaign", "unknown_campaign", f"The brand has no campaign {wanted[:80]!r}")
        elif len(matches) > 1:
            add("campaign", "ambiguous_campaign", f"The brand has {len(matches)} campaigns named {wanted[:80]!r}: "
                "use campaign_id")
        elif campaign_id is not None and campaign_id != matches[0]:
            add("campaign", "conflicting_value", "campaign and campaign_id name different campaigns")
        else:
            campaign_id = matches[0]

    instant: datetime | None = None
    time_path = "scheduled_at"
    if post.scheduled_at is not None and post.local_scheduled_at is not None:
        add("scheduled_at", "conflicting_time", "Give scheduled_at, or the local date and time, not both")
    elif post.scheduled_at is not None:
        if post.scheduled_at.tzinfo is None:
            add("scheduled_at", "offset_required", "Give the time with its offset (2026-12-20T09:00:00+01:00), or use "
                "the local date and time (the brand's zone)")
        else:
            instant = post.scheduled_at.astimezone(UTC)
    elif post.local_scheduled_at is not None:
        time_path = "local_scheduled_at"
        if post.local_scheduled_at.tzinfo is not None:
            add(time_path, "offset_not_expected", "A local time is read in the brand's zone: give it without offset, "
                "or use scheduled_at")
        else:
            instant, note = wall_clock_to_utc(post.local_scheduled_at, lookups.zone)
            shown = post.local_scheduled_at.strftime("%Y-%m-%d %H:%M")
            if note == "nonexistent":
                add(time_path, "nonexistent_local_time", f"{shown} does not exist in {lookups.zone} (the clocks "
                    "skip it); choose another time")
                instant = None
            elif note == "ambiguous":
                add(time_path, "ambiguous_local_time", f"{shown} happens twice in {lookups.zone}; the first is taken",
                    severity=Severity.WARNING.value, blocking=False)
    time_failed = bool({"scheduled_at", "local_scheduled_at"} & source.failed)

    variants: list[cs.VariantIn] = []
    network_issues: list[tuple[int, list[content_rules.Issue]]] = []
    seen: dict[UUID, int] = {}
    for i, v in enumerate(post.variants):
        path = f"variants[{i}]"
        account: Account | None = None
        if v.social_account_id is not None and v.account is not None:
            add(f"{path}.account", "conflicting_value", "Give social_account_id or account, not both")
        elif v.social_account_id is not None or v.account is not None:
            ref = str(v.social_account_id) if v.social_account_id is not None else v.account or ""
            account, rule, message = find_account(ref, lookups.accounts)
            where = f"{path}.social_account_id" if v.social_account_id is not None else f"{path}.account"
            if account is None:
                add(where, rule, message)
            elif account.status == "revoked":
                add(where, "account_revoked", "This account was unlinked; link it again")
                account = None
            elif account.id in seen:
                add(where, "duplicate_account", f"Another variant of this post already goes to this account "
                    f"(row {source.locate(f'variants[{seen[account.id]}]')[0]})")
                account = None
            else:
                seen[account.id] = i
        elif f"{path}.account" not in source.failed:
            add(f"{path}.account", "required", "Each variant needs its account: social_account_id, or account as "
                "network:handle")
        facts: list[MediaFacts] | None = []
        media_ids = [m.media_id for m in v.media]
        for j, ref in enumerate(v.media):
            if media_ids.index(ref.media_id) != j:
                add(f"{path}.media[{j}].media_id", "duplicate_media", "The same media appears twice")
                facts = None
            elif (found := lookups.media.get(ref.media_id)) is None:
                add(f"{path}.media[{j}].media_id", "unknown_media", f"No media {ref.media_id} in this brand's library")
                facts = None
            elif facts is not None:
                facts.append(MediaFacts(kind=found.kind, content_type=found.content_type, size_bytes=found.size_bytes,
                                        width=found.width, height=found.height, duration_ms=found.duration_ms,
                                        alt_text=ref.alt_text or found.alt_text))
        if f"{path}.media" in source.failed:
            facts = None
        if account is None:
            continue
        issues = content_rules.variant_issues(VariantDraft(account.network, v.text, dict(v.options), facts or []))
        if facts is None:  # unreadable media: its rules would only repeat that
            issues = [issue for issue in issues if not issue.field.startswith("media")]
        network_issues.append((i, issues))
        variants.append(cs.VariantIn(social_account_id=account.id, text=v.text, options=dict(v.options),
                                     media=list(v.media)))
    same = content_rules.same_copy_warnings([(str(i), post.variants[i].text) for i, _ in network_issues])
    for i, issues in network_issues:
        if str(i) in same:
            issues = [*issues, same[str(i)]]
        for issue in issues:
            add(f"variants[{i}].{issue.field}", issue.rule, issue.message, severity=issue.severity.value,
                blocking=post.schedule and issue.severity is Severity.ERROR)

    if post.schedule:
        if instant is None and not time_failed and not problems_at(problems, source.locate(time_path)):
            add("schedule", "time_required", "A post to schedule needs a time: fill date and time (the brand's "
                "zone) or scheduled_at")
        elif instant is not None and instant <= lookups.now + SCHEDULE_MARGIN:
            add(time_path, "time_passed", "The time to publish at has passed; choose a later one to schedule")
        if not post.variants:
            add("variants", "no_variants", "A post to schedule needs at least one variant")
    elif instant is not None and instant <= lookups.now:
        add(time_path, "time_passed", "This time has passed; the post is imported as a draft",
            severity=Severity.WARNING.value, blocking=False)

    if any(p.blocking for p in problems):
        return Checked(source.rows, None, post.schedule, problems)
    create = cs.PostCreate(title=post.title, labels=list(post.labels), campaign_id=campaign_id, scheduled_at=instant,
                           variants=variants)
    return Checked(source.rows, create, post.schedule, problems)


def problems_at(problems: list[Problem], where: tuple[int, str]) -> bool:
    return any((p.row, p.column) == where for p in problems)


def ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.row)


# --- the template --------------------------------------------------------------------------

TEMPLATE_COLUMNS = ("post_key", "title", "labels", "campaign", "date", "time", "schedule", "account", "text",
                    "media_ids", *OPTION_COLUMNS)


def template_csv() -> str:
    """The header and two rows: one post going to X (a thread) and to Instagram."""
    rows = [
        {"post_key": "roscon-1", "title": "Roscón launch", "labels": "christmas; launch", "campaign": "Christmas roscón",
         "date": "2026-12-20", "time": "09:00", "schedule": "no", "account": "x:panaderiasol",
         "text": "Roscón de Reyes, ya en tienda 🥐", "opt_thread": "Pídelo hoy || Recógelo el 6 de enero"},
        {"post_key": "roscon-1", "account": "instagram:panaderiasol",
         "text": "Nuestro roscón de siempre, hecho a mano.\n#roscon #navidad", "opt_placement": "feed",
         "opt_first_comment": "#panaderiasol"},
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TEMPLATE_COLUMNS)
    for row in rows:
        writer.writerow([row.get(column, "") for column in TEMPLATE_COLUMNS])
    return out.getvalue()
