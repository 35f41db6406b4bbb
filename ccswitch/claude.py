"""What ccs knows about Claude Code: the variables `ccs run` manages (where claude sends its requests, with
which key, for which model) and those it leaves alone on purpose, where claude's settings files are, and
how ccs reads them.

claude lets `env` in its settings files beat the process environment, and `claude --settings` beats
those files; that is how `ccs run` stays authoritative for what it manages (see `launch`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NamedTuple

from . import files

TIER_VARS = {
    "opus": "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "sonnet": "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "haiku": "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "fable": "ANTHROPIC_DEFAULT_FABLE_MODEL",  # claude-fable-5* and claude-mythos-5*
    "subagent": "CLAUDE_CODE_SUBAGENT_MODEL",
}
LABELS = ("_NAME", "_DESCRIPTION", "_SUPPORTED_CAPABILITIES")  # how /model shows a tier, or the custom row
CUSTOM_OPTION = "ANTHROPIC_CUSTOM_MODEL_OPTION"  # one more /model row


class Field(NamedTuple):
    """A profile field that becomes one of a cloud's variables: which, its form (claude 2.1.332's own checks),
    and what it is, for people."""

    var: str
    form: re.Pattern
    what: str


AWS_REGION = Field("AWS_REGION", re.compile(r"[a-z]{2,}(-[a-z]+)+-\d{1,2}\Z"), "an AWS region such as us-east-1")
AWS_PROFILE = Field("AWS_PROFILE", re.compile(r"[\w.+=,@-]+\Z"), "a profile of ~/.aws/config")


class Cloud(NamedTuple):
    """A cloud claude signs in to itself, with that cloud's own credentials (ccs holds no key; no proxy): the
    switch that turns it on, the variable of its endpoint (a profile's base_url), the switch that would send
    its requests unsigned (for a gateway that signs them; never inherited), the profile fields it reads, the
    fields it cannot run without (each a tuple: one of them), and whose credentials doctor looks for."""

    name: str  # the profile's `auth`
    title: str
    switch: str
    endpoint: str
    unsigned: str
    fields: dict[str, Field]
    needs: tuple[tuple[str, ...], ...]
    credentials: str  # "aws", "gcp" or "azure"


CLOUDS: dict[str, Cloud] = {cloud.name: cloud for cloud in (
    Cloud("bedrock", "Amazon Bedrock", "CLAUDE_CODE_USE_BEDROCK", "ANTHROPIC_BEDROCK_BASE_URL",
          "CLAUDE_CODE_SKIP_BEDROCK_AUTH", {"region": AWS_REGION, "aws_profile": AWS_PROFILE}, (("region",),), "aws"),
    # Bedrock's endpoint that serves Anthropic's Messages API (bedrock-mantle.REGION.api.aws)
    Cloud("mantle", "Amazon Bedrock (Mantle)", "CLAUDE_CODE_USE_MANTLE", "ANTHROPIC_BEDROCK_MANTLE_BASE_URL",
          "CLAUDE_CODE_SKIP_MANTLE_AUTH", {"region": AWS_REGION, "aws_profile": AWS_PROFILE}, (("region",),), "aws"),
    Cloud("vertex", "Google Vertex AI", "CLAUDE_CODE_USE_VERTEX", "ANTHROPIC_VERTEX_BASE_URL",
          "CLAUDE_CODE_SKIP_VERTEX_AUTH",
          {"region": Field("CLOUD_ML_REGION", re.compile(r"([a-z]+-[a-z]+\d{1,2}|global|eu|us)\Z"),
                           "a Vertex AI region such as global or us-east5"),
           "project": Field("ANTHROPIC_VERTEX_PROJECT_ID", re.compile(r"[a-z0-9][a-z0-9.:-]*\Z"),
                            "a Google Cloud project id")}, (("project",), ("region",)), "gcp"),
    Cloud("foundry", "Microsoft Foundry", "CLAUDE_CODE_USE_FOUNDRY", "ANTHROPIC_FOUNDRY_BASE_URL",
          "CLAUDE_CODE_SKIP_FOUNDRY_AUTH",
          {"resource": Field("ANTHROPIC_FOUNDRY_RESOURCE", re.compile(r"[a-z0-9][a-z0-9-]{0,62}[a-z0-9]\Z"),
                             "the Foundry resource's bare name (such as my-resource), not its URL")},
          (("resource", "base_url"),), "azure"),
)}
CLOUD_FIELDS = tuple(dict.fromkeys(field for cloud in CLOUDS.values() for field in cloud.fields))
# Variables whose inherited values would contradict a profile: where claude sends requests, with
# which key, for which model (every tier, its /model labels, every other model claude picks by
# itself), which cloud it signs in to instead, and the limits that belong to one model.
MANAGED = (
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_UNIX_SOCKET",  # claude would send its requests over this socket, not to the base URL
    "_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL",  # takes the base URL for Anthropic's: no tier rows in /model
    "ANTHROPIC_MODEL",
    "ANTHROPIC_DEFAULT_MODEL",
    *(var + label for var in [*TIER_VARS.values(), CUSTOM_OPTION] for label in ("", *LABELS)
      if not (var == TIER_VARS["subagent"] and label)),
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION",
    "CLAUDE_CODE_SUBAGENT_MODEL_FORCE",
    "CLAUDE_CODE_WORKFLOW_SUBAGENT_MODEL",
    "CLAUDE_CODE_AUTO_MODE_MODEL",
    "CLAUDE_CODE_BG_CLASSIFIER_MODEL",
    # claude's notes that it wrote a tier's model itself, which let it swap that model for a Claude one
    "CLAUDE_CODE_3P_PROBE_WROTE_OPUS_DEFAULT",
    "CLAUDE_CODE_3P_PROBE_WROTE_SONNET_DEFAULT",
    "CLAUDE_CODE_3P_PROBE_WROTE_HAIKU_DEFAULT",
    "CLAUDE_CODE_3P_SEEDED_OPUS_DEFAULT",
    "CLAUDE_CODE_3P_SEEDED_SONNET_DEFAULT",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_USE_MANTLE",
    "CLAUDE_CODE_USE_ANTHROPIC_AWS",
    "CLAUDE_CODE_USE_ANTHROPIC_GOOGLE_CLOUD",
    "CLAUDE_CODE_USE_GATEWAY",
    # each cloud's endpoint, the switch that sends its requests unsigned, and what names its project or
    # resource: a cloud profile sets its own, every other session has none (AWS_REGION and AWS_PROFILE are
    # the shell's, for the aws commands a model runs, and mean nothing to claude without a switch)
    *(f"ANTHROPIC_{cloud}_BASE_URL" for cloud in ("BEDROCK", "VERTEX", "FOUNDRY", "AWS", "GOOGLE_CLOUD",
                                                  "BEDROCK_MANTLE")),
    *(f"CLAUDE_CODE_SKIP_{cloud}_AUTH" for cloud in ("BEDROCK", "VERTEX", "FOUNDRY", "MANTLE", "ANTHROPIC_AWS",
                                                     "ANTHROPIC_GOOGLE_CLOUD")),
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "CLOUD_ML_REGION",
    "ANTHROPIC_FOUNDRY_RESOURCE",
    "ANTHROPIC_AWS_WORKSPACE_ID",
    "ANTHROPIC_GOOGLE_CLOUD_PROJECT",
    "ANTHROPIC_GOOGLE_CLOUD_LOCATION",
    "ANTHROPIC_GOOGLE_CLOUD_WORKSPACE_ID",
    "CLAUDE_CODE_MODEL_NOBODY_CHOSE",  # when true (hosted runners set it) claude drops --model
    "CLAUDE_CODE_MAX_CONTEXT_TOKENS",
    # without a window for a model it does not know, claude assumes 1M tokens and says so on every start
    "CLAUDE_CODE_DISABLE_UNKNOWN_MODEL_WINDOW_ENFORCEMENT",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "CLAUDE_CODE_GATEWAY_HINT_HEADERS",  # claude says what each request is for (the proxy routes by it)
    "CLAUDECODE",
)
# Model and provider variables of claude (2.1.329 to 2.1.332) that ccs leaves to the user on purpose: they change how
# claude behaves with whatever model it has, not which provider or model a request goes to.
LEFT_ALONE = {
    "features named CLAUDE_CODE_USE_*, not providers": (
        "CLAUDE_CODE_USE_POWERSHELL_TOOL", "CLAUDE_CODE_USE_NATIVE_FILE_SEARCH", "CLAUDE_CODE_USE_CCR_V2",
        "CLAUDE_CODE_USE_COWORK_PLUGINS"),
    "how claude treats models, any provider's": (
        "CLAUDE_CODE_ALLOW_OTHER_MODELS", "CLAUDE_CODE_DISABLE_LEGACY_MODEL_REMAP",
        "CLAUDE_CODE_DISABLE_MODEL_ACCESS_FALLBACK",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY", "CLAUDE_CODE_GATEWAY_MODEL_DISCOVERY_TIMEOUT_MS",
        "CLAUDE_CODE_MODEL_CAPABILITIES", "CLAUDE_CODE_MODEL_CATALOG", "CLAUDE_CODE_MODEL_CATALOG_URL",
        "CLAUDE_CODE_NO_MODEL_FALLBACK", "CLAUDE_CODE_SKIP_MODEL_ACCESS_MEMORY",
        "CLAUDE_CODE_COORDINATOR_FORCE_WORKER_INHERIT_MODEL"),
    "set by the programs that host claude (a runner, a delegated session), not by a user": (
        "CLAUDE_CODE_RUNNER_MODEL_SOCKET", "CLAUDE_CODE_USER_DELEGATED_SESSION_ALLOWED_CHECK_MODELS",
        "CLAUDE_CODE_USER_DELEGATED_SESSION_ANY_CHECK_MODEL"),
}
# Where claude's HTTPS goes, which certificates it trusts, and where a cloud's SDK sends requests and finds
# credentials. A repository's settings could send claude (and whatever it holds) through an intercepting proxy
# it trusts, or a cloud profile's signed requests to its own endpoint: claude gets the values of the shell that
# started ccs instead (or the profile's), or none.
NETWORK_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                "no_proxy", "NODE_TLS_REJECT_UNAUTHORIZED", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR",
                # where the clouds' SDKs in claude send a cloud profile's requests and find its credentials (claude
                # lists them with its provider variables): a repository's AWS_ENDPOINT_URL got the Bedrock key
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                "AWS_ENDPOINT_URL_STS", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
                "AWS_DEFAULT_REGION", "AWS_REGION", "ANTHROPIC_BEDROCK_REGION_PREFIX", "GOOGLE_APPLICATION_CREDENTIALS",
                "CLOUDSDK_CONFIG")
SECRET_VARS = ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")
HELPER = "apiKeyHelper"  # a settings key whose command's output claude sends as a key
MARKER = "CCS_RUN"  # tells the child (and a statusline) which profile it runs under
TESTED_RELEASE = "2.1.332"  # the newest claude the test suite ran against (CI installs it)
INSTALL_HINT = "install it with `npm install -g @anthropic-ai/claude-code`"
# What claude 2.1.330+ prints on stderr in --print mode for a model name it does not know, once per model,
# whatever the environment says (only settings that make it pretend to be a Claude model silence it, and
# those take the window out of the profile's hands): ccs leaves the line out.
UNRECOGNIZED_MODEL = b"[claude-code:unrecognized_model] "
PRINT_MODE = ("-p", "--print")
SETTINGS_BYTES = 4 * 1024 * 1024  # a settings file larger than this is not read (claude's own are a few KB)


def is_claude(program: str) -> bool:
    return Path(program).name == "claude"


def config_dir(env) -> Path:
    """Where claude keeps its settings and sessions, for the environment it runs in."""
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"])
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude"


def settings_paths(env, cwd: Path) -> list[Path]:
    """The settings files whose `env` claude obeys over its environment: the user's, the project's, the local one."""
    return [config_dir(env) / "settings.json", cwd / ".claude" / "settings.json",
            cwd / ".claude" / "settings.local.json"]


class Settings:
    """One settings file as ccs read it: its `env` (always a dict) and other keys, or why it could not be read
    (then claude may still obey it, and ccs must assume the worst)."""

    def __init__(self, path: Path, data: dict | None = None, problem: str | None = None):
        self.path = path
        self.data = data or {}
        self.problem = problem
        env = self.data.get("env")
        self.env: dict = env if isinstance(env, dict) else {}

    def get(self, key: str, default=None):
        return self.data.get(key, default)


def settings_files(env, cwd: Path) -> list[Settings]:
    """Each of claude's settings files that exists, read as claude reads it (a UTF-8 BOM is allowed); one
    that cannot be read safely (not a regular file, too large, not JSON) comes with its problem."""
    found = []
    for path in settings_paths(env, cwd):
        try:
            text = files.read_small(path, SETTINGS_BYTES)
        except files.Unreadable as e:
            found.append(Settings(path, problem=str(e)))
            continue
        if text is None:
            continue
        try:
            data = json.loads(text)
        except ValueError as e:
            found.append(Settings(path, problem=f"not JSON ({e})"))
            continue
        found.append(Settings(path, data) if isinstance(data, dict) else Settings(path, problem="not a JSON object"))
    return found


def saved_model(path: Path):
    """The `model` claude saved in a settings file (a /model pick), if any."""
    try:
        settings = json.loads(files.read_small(path, SETTINGS_BYTES) or "{}")
    except (files.Unreadable, ValueError):
        return None
    return settings.get("model") if isinstance(settings, dict) else None
