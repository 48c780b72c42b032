"""daemons.runtime.config: schema, merging, precedence, errors, and properties."""

from __future__ import annotations

import dataclasses
import math
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sample_daemon import Http, SampleConfig

from daemons.runtime.config import (
    CliArgs,
    ConfigError,
    ConfigLoader,
    RuntimeSettings,
    dump_toml,
    setting,
)


@pytest.fixture
def loader() -> ConfigLoader[SampleConfig]:
    return ConfigLoader(SampleConfig, prog="sample")


def load(loader: ConfigLoader[Any], tmp_path: Path, text: str | None, *argv: str):
    args = list(argv)
    if text is not None:
        f = tmp_path / "c.toml"
        f.write_text(text)
        args = ["--config", str(f), *args]
    return loader.load(loader.parse_args(args))


# ------------------------------------------------------------------ merging


def test_defaults(loader: ConfigLoader[SampleConfig]) -> None:
    got = loader.load(loader.parse_args([]))
    assert got.config == SampleConfig()
    assert got.runtime == RuntimeSettings()
    assert got.file is None


def test_file_overrides_defaults_and_flags_override_file(loader, tmp_path) -> None:
    text = 'greeting = "from-file"\nworkers = 3\nratio = 1\n[http]\nbanner = "file"\n'
    got = load(loader, tmp_path, text, "--workers", "9", "--http.banner", "flag").config
    assert got.greeting == "from-file"  # file beats default
    assert got.workers == 9  # flag beats file
    assert got.ratio == 1.0 and isinstance(got.ratio, float)  # TOML int accepted for float
    assert got.http == Http(port=0, banner="flag")
    assert got.mode == "fast"  # untouched default


def test_dash_and_underscore_keys_are_equivalent(loader, tmp_path) -> None:
    assert load(loader, tmp_path, "block-size = 8\n").config.block_size == 8
    assert load(loader, tmp_path, "block_size = 8\n").config.block_size == 8
    assert load(loader, tmp_path, "log-level = 'debug'\n").runtime.log_level == "debug"
    assert load(loader, tmp_path, None, "--block-size", "10").config.block_size == 10


def test_nested_tables_dotted_keys_and_flags(loader, tmp_path) -> None:
    assert load(loader, tmp_path, "http.port = 8080\n").config.http.port == 8080
    assert load(loader, tmp_path, "[http]\nport = 8081\n").config.http.port == 8081
    assert load(loader, tmp_path, None, "--http.port", "8082").config.http.port == 8082


def test_runtime_settings_from_file_and_flags(loader, tmp_path) -> None:
    got = load(
        loader, tmp_path, 'log_level = "warning"\nlog_format = "text"\n', "--log-level", "ERROR"
    )
    assert got.runtime.log_level == "error"  # case-folded onto the choice
    assert got.runtime.log_format == "text"


def test_bool_list_path_optional(loader, tmp_path) -> None:
    got = load(loader, tmp_path, 'verbose = true\ntags = ["a"]\nstate_dir = "/var/x"\n').config
    assert got.verbose is True and got.tags == ["a"] and got.state_dir == Path("/var/x")
    got = load(
        loader,
        tmp_path,
        'verbose = true\ntags = ["a"]\n',
        "--no-verbose",
        "--tags",
        "b",
        "--tags",
        "c",
    ).config
    assert got.verbose is False
    assert got.tags == ["b", "c"]  # a flag replaces the file's list
    assert load(loader, tmp_path, None).config.state_dir is None


def test_int_flag_forms(loader) -> None:
    assert loader.load(loader.parse_args(["--block-size", "0x10"])).config.block_size == 16
    assert loader.load(loader.parse_args(["--block-size", "1_024"])).config.block_size == 1024


def test_secret_masked_in_dump(loader, tmp_path) -> None:
    got = load(loader, tmp_path, 'token = "hunter2"\n')
    assert "hunter2" not in loader.dump(got)
    assert "hunter2" in loader.dump(got, reveal_secrets=True)


def test_dump_round_trips(loader, tmp_path) -> None:
    got = load(loader, tmp_path, 'greeting = "a\\"b\\n"\ntags = ["x", "y"]\n[http]\nport = 5\n')
    again = load(loader, tmp_path, loader.dump(got, reveal_secrets=True))
    assert again == dataclasses.replace(got, file=again.file)


def test_non_reloadable(loader) -> None:
    old = SampleConfig()
    new = dataclasses.replace(old, greeting="x", http=Http(port=99, banner="b"))
    assert loader.non_reloadable_changes(old, new) == ["http.port"]
    kept = loader.keep_non_reloadable(old, new)
    assert kept.http == Http(port=0, banner="b") and kept.greeting == "x"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workres = 3\n", "c.toml:1: unknown key 'workres' (did you mean 'workers'?)"),
        ("[htp]\nport = 1\n", "c.toml:1: unknown key 'htp'"),
        ("[http]\nprt = 1\n", "c.toml:2: unknown key 'http.prt'"),
        ('workers = "3"\n', "c.toml:1: workers: expected an integer, got a string ('3')"),
        ("workers = true\n", "workers: expected an integer, got a boolean"),
        ("workers = 1.5\n", "workers: expected an integer, got a float"),
        ("workers = 0\n", "workers: must be >= 1, got 0"),
        ("workers = 65\n", "workers: must be <= 64, got 65"),
        ("ratio = nan\n", "ratio: must be a finite number"),
        ("ratio = inf\n", "ratio: must be a finite number"),
        ("block_size = 7\n", "block_size: must be even, got 7"),
        ('mode = "slow"\n', "mode: expected one of 'fast', 'safe'"),
        ('log_level = "loud"\n', "log_level: must be one of"),
        ("tags = [1]\n", "tags: item 0: expected a string, got an integer"),
        ('tags = "a"\n', "tags: expected an array of strings"),
        ("http = 1\n", "c.toml:1: http: expected a table"),
        ("greeting = 1979-05-27\n", "greeting: expected a string, got a date/time"),
        ('state_dir = ""\n', "state_dir: must not be an empty path"),
        ("block-size = 2\nblock_size = 4\n", "'block_size' given twice"),
        ('greeting = "x\n', "c.toml:1:14: invalid TOML"),
        ("= 1\n", "c.toml:1:1: invalid TOML"),
        ("a = 1\na = 2\n", "c.toml:2:"),
        ("[http]\n[http]\n", "invalid TOML"),
    ],
)
def test_bad_file_values(loader, tmp_path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(loader, tmp_path, text)
    msg = str(err.value)
    assert expected in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--workers", "x"], "--workers: expected an integer, got 'x'"),
        (["--workers", "100"], "--workers: must be <= 64"),
        (["--ratio", "nan"], "--ratio: must be a finite number"),
        (["--mode", "slow"], "--mode: expected one of"),
        (["--http.port", "-1"], "--http.port: must be >= 0"),
        (["--nope"], "unrecognized arguments: --nope"),
        (["--workers"], "expected one argument"),
        (["--config", ""], "--config: empty file name"),
        (["stray"], "unrecognized arguments: stray"),
    ],
)
def test_bad_flags(loader, argv: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        loader.load(loader.parse_args(argv))
    assert expected in str(err.value)


def test_unreadable_and_undecodable_files(loader, tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        loader.load(loader.parse_args(["--config", str(tmp_path / "missing.toml")]))
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        loader.load(loader.parse_args(["--config", str(tmp_path)]))
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'greeting = "ok"\nworkers = "\xff"\n')
    with pytest.raises(ConfigError, match=r"bad\.toml:2: not valid UTF-8"):
        loader.load(loader.parse_args(["--config", str(bad)]))


@dataclass
class NeedsValue:
    endpoint: str = setting(help="required, no default")


@dataclass
class CrossChecked:
    low: int = 1
    high: int = 2

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low must not exceed high")


def test_required_setting_and_cross_field_check(tmp_path) -> None:
    needs = ConfigLoader(NeedsValue, prog="x")
    with pytest.raises(ConfigError, match="missing required setting 'endpoint'.*--endpoint"):
        needs.load(needs.parse_args([]))
    assert needs.load(needs.parse_args(["--endpoint", "e"])).config.endpoint == "e"
    cross = ConfigLoader(CrossChecked, prog="x")
    with pytest.raises(ConfigError, match="invalid configuration: low must not exceed high"):
        cross.load(cross.parse_args(["--low", "5"]))


@dataclass
class BadType:
    what: dict[str, int] = field(default_factory=dict)


@dataclass
class Clash:
    log_level: str = "x"


@dataclass
class BadDefault:
    n: int = setting(0, min=1)


@dataclass
class Reserved:
    config: str = "x"


@pytest.mark.parametrize("schema", [BadType, Clash, BadDefault, Reserved])
def test_schema_mistakes_are_programming_errors(schema: type) -> None:
    with pytest.raises(TypeError):
        ConfigLoader(schema, prog="x")


def test_dump_toml_is_parseable() -> None:
    text = dump_toml(
        {("a",): 'q"\\\x01\x7f\u2028', ("t", "b"): [1, 2], ("t", "c"): None, ("f",): -math.inf}
    )
    doc = tomllib.loads(text)
    assert doc == {"a": 'q"\\\x01\x7f\u2028', "f": -math.inf, "t": {"b": [1, 2]}}


# -------------------------------------------------------------- properties

KEYS = [
    "greeting",
    "workers",
    "ratio",
    "block-size",
    "block_size",
    "verbose",
    "tags",
    "mode",
    "state_dir",
    "http",
    "port",
    "banner",
    "log_level",
    "x",
    '"quoted key"',
    "a.b",
    "http.port",
]
VALUES = [
    '"s"',
    "''",
    "1",
    "-7",
    "0x1f",
    "1.5",
    "nan",
    "-inf",
    "true",
    "[]",
    '["a", 2]',
    "[1, 2]",
    "{}",
    "{port = 3}",
    "1979-05-27",
    "07:32:00",
    '"""\nx"""',
    "2e308",
    "99999999999999999999",
]
FRAGMENTS = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(VALUES),
    st.sampled_from(
        [" = ", "=", "\n", "[", "]", "[[", "]]", ".", ",", "#", '"', "'", " ", "\t", "\\"]
    ),
    st.text(alphabet=string.printable, max_size=4),
)


def _only_config_errors(loader: ConfigLoader[Any], text: str) -> None:
    try:
        values = loader.values_from_text(text, "f.toml")
        loader.build(values)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_config_error(text: str) -> None:
    _only_config_errors(ConfigLoader(SampleConfig, prog="p"), text)


@given(st.lists(FRAGMENTS, max_size=30).map("".join))
def test_tomlish_text_only_raises_config_error(text: str) -> None:
    _only_config_errors(ConfigLoader(SampleConfig, prog="p"), text)


@given(st.lists(st.tuples(st.sampled_from(KEYS[:13]), st.sampled_from(VALUES)), max_size=8))
def test_key_value_lines_only_raise_config_error(pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"{k} = {v}\n" for k, v in pairs)
    _only_config_errors(ConfigLoader(SampleConfig, prog="p"), text)


TOML_VALUES = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
        st.dates(),
        st.datetimes(),
        st.none(),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), TOML_VALUES, max_size=6))
def test_arbitrary_documents_only_raise_config_error(doc: dict[str, Any]) -> None:
    loader = ConfigLoader(SampleConfig, prog="p")
    try:
        loader.build(loader.values_from_mapping(doc, "doc"))
    except ConfigError:
        pass


FLAGS = [
    "--workers",
    "--ratio",
    "--mode",
    "--tags",
    "--verbose",
    "--no-verbose",
    "--http.port",
    "--config",
    "--log-level",
    "--block-size",
    "--state-dir",
    "-c",
    "--",
    "-",
    "--x",
]


@given(st.lists(st.one_of(st.sampled_from(FLAGS), st.text(max_size=6)), max_size=8))
def test_arbitrary_argv_only_raises_config_error(argv: list[str]) -> None:
    loader = ConfigLoader(SampleConfig, prog="p")
    try:
        args = loader.parse_args(argv)
        loader.build(args.overrides)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@given(
    workers=st.integers(1, 64),
    ratio=st.floats(0.0, 1.0),
    greeting=st.text(max_size=20),
    tags=st.lists(st.text(max_size=8), max_size=4),
    port=st.integers(0, 65535),
    verbose=st.booleans(),
)
def test_valid_values_round_trip_through_toml(
    workers, ratio, greeting, tags, port, verbose
) -> None:
    loader = ConfigLoader(SampleConfig, prog="p")
    cfg = SampleConfig(
        workers=workers,
        ratio=ratio,
        greeting=greeting,
        tags=tags,
        verbose=verbose,
        http=Http(port=port),
    )
    text = dump_toml(
        {
            ("workers",): workers,
            ("ratio",): ratio,
            ("greeting",): greeting,
            ("tags",): tags,
            ("verbose",): verbose,
            ("http", "port"): port,
        }
    )
    assert loader.build(loader.values_from_text(text)).config == cfg


@given(
    default=st.just(4),
    in_file=st.none() | st.integers(1, 64),
    in_flag=st.none() | st.integers(1, 64),
)
def test_precedence_property(default: int, in_file: int | None, in_flag: int | None) -> None:
    loader = ConfigLoader(SampleConfig, prog="p")
    file_values = loader.values_from_text("" if in_file is None else f"workers = {in_file}\n")
    flags = loader.parse_args([] if in_flag is None else ["--workers", str(in_flag)])
    got = loader.build({**file_values, **flags.overrides}).config.workers
    assert got == (in_flag if in_flag is not None else in_file if in_file is not None else default)


def test_cli_args_default_load(loader) -> None:
    assert loader.load(CliArgs(None, {})).config == SampleConfig()


class GreetingFileLoader(ConfigLoader[SampleConfig]):
    """A layer between the file and the flags: a second file named by the TOML's
    ``greeting`` or by the flags, giving ``workers`` (the way nfdhcpd.conf sits in
    nefeli-dhcpd's stack)."""

    seen: list[tuple[dict[tuple[str, ...], Any], dict[tuple[str, ...], Any]]]

    def extra_layer(self, file_values, overrides):
        self.seen.append((dict(file_values), dict(overrides)))
        name = overrides.get(("greeting",), file_values.get(("greeting",)))
        if name is None or not str(name).startswith("/"):
            return None
        text, source = self.read_file(Path(name))
        return self.values_from_text(text, source), source


def test_extra_layer_sits_between_file_and_flags(tmp_path: Path) -> None:
    loader = GreetingFileLoader(SampleConfig, prog="sample")
    loader.seen = []
    extra = tmp_path / "extra.toml"
    extra.write_text("workers = 7\nratio = 0.25\n")
    got = load(loader, tmp_path, f'greeting = "{extra}"\nworkers = 3\nverbose = true\n', "--ratio", "0.75")
    assert got.config.workers == 7  # the extra layer beats the file
    assert got.config.ratio == 0.75  # flags beat the extra layer
    assert got.config.verbose is True  # the file's other values stay
    assert loader.seen[-1][0][("workers",)] == 3 and loader.seen[-1][1] == {("ratio",): 0.75}
    # without a --config, the layer's file names the source in errors
    extra.write_text("workers = 0\n")
    with pytest.raises(ConfigError, match=f"{extra}:1: workers"):
        load(loader, tmp_path, None, "--greeting", str(extra))
    # no layer: exactly the plain loader's result
    plain = ConfigLoader(SampleConfig, prog="sample")
    assert load(loader, tmp_path, "workers = 5\n").config == load(plain, tmp_path, "workers = 5\n").config
