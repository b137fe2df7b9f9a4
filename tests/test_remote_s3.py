"""Tests of recraft_build.cache.s3: an S3-compatible bucket as the shared remote cache.

Everything runs against a real moto S3 server on 127.0.0.1 started by this module
(skipped with the reason when moto cannot be imported); the credentials are fake
values that moto accepts, so nothing touches the internet or needs a real key.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

moto_server = pytest.importorskip(
    "moto.server", reason="moto is not installed (pip install -e '.[test]' brings moto[server])"
)

from recraft_build.cli import main  # noqa: E402
from cache_fakes import Provider, Warnings, action_key, build, sha
from recraft_build.errors import UsageError  # noqa: E402
from recraft_build.cache.codec import AC_FORMAT  # noqa: E402
from recraft_build.cache.http import RemoteCache  # noqa: E402
from recraft_build.cache.policy import RemotePolicy  # noqa: E402
from recraft_build.cache.remote_base import PutResult  # noqa: E402
from recraft_build.cache.tiered import TieredStore  # noqa: E402
from recraft_build.cache.s3 import (  # noqa: E402
    S3_ENDPOINT_ENV,
    S3Cache,
    is_s3_url,
    parse_s3_url,
    s3_client,
)
from recraft_build.cache.local import Store  # noqa: E402

SECRET = "fake-secret-key-never-shown-0123456789"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real moto S3 server on 127.0.0.1 (a free port), for the whole module."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path, s3_endpoint) -> dict[str, str]:
    """Fake credentials in boto3's environment chain; no config files, no instance roles."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "RECRAFT_BUILD_REMOTE_CACHE"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFORTESTS",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        S3_ENDPOINT_ENV: s3_endpoint,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def s3(aws_env) -> Iterator[Any]:
    """A boto3 client on the moto server (what the caller of S3Cache owns)."""
    client = s3_client(aws_env)
    yield client
    client.close()


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket for one test."""
    name = f"team-cache-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def cache_for(bucket: str, client: Any, warnings: Warnings, *, prefix: str = "recraft", **kw: Any) -> S3Cache:
    kw.setdefault("sleep", lambda seconds: None)
    return S3Cache(f"s3://{bucket}/{prefix}", client=client, warn=warnings, **kw)


def bucket_keys(client: Any, bucket: str) -> list[str]:
    answer = client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- URLs and setup


def test_s3_urls_parse_into_bucket_and_prefix() -> None:
    assert parse_s3_url("s3://team-cache/recraft/art/") == ("team-cache", "recraft/art")
    assert parse_s3_url("s3://team-cache") == ("team-cache", "")
    assert is_s3_url("S3://team-cache/x") and not is_s3_url("https://cache.internal")
    with pytest.raises(UsageError, match="AWS_ACCESS_KEY_ID") as caught:
        parse_s3_url("s3://AKIA:hunter22@team-cache/x")
    assert "hunter22" not in str(caught.value)
    with pytest.raises(UsageError, match="bucket"):
        parse_s3_url("s3:///only-a-prefix")
    with pytest.raises(UsageError, match=S3_ENDPOINT_ENV):
        parse_s3_url("s3://team-cache/x?endpoint=http://minio")


def test_bad_mode_and_bad_endpoint_are_usage_errors(s3, aws_env) -> None:
    with pytest.raises(UsageError, match="read, read-write"):
        S3Cache("s3://team-cache/x", client=s3, mode="write")
    with pytest.raises(UsageError, match=S3_ENDPOINT_ENV):
        s3_client({**aws_env, S3_ENDPOINT_ENV: "minio:9000"})


def test_missing_boto3_says_how_to_install_it(monkeypatch, aws_env) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail
    with pytest.raises(UsageError, match=r"pip install 'recraft-build\[s3\]'"):
        s3_client(aws_env)


# --------------------------------------------------------------------------- the client


def test_blob_and_record_round_trip_in_the_http_layout(s3, bucket) -> None:
    warnings = Warnings()
    remote = cache_for(bucket, s3, warnings)
    data = b"\x89PNG fake picture bytes" * 100
    digest = sha(data)
    key = action_key("hero")
    record = {"picture": {"sha256": digest}, "credits": 1, "note": None}

    assert remote.get_blob(digest) is None and not remote.has_blob(digest)
    assert remote.get_record(key) is None and not remote.has_record(key)
    assert remote.put_blob(data) is PutResult.UPLOADED
    assert remote.put_record(key, record) is PutResult.UPLOADED
    assert remote.has_blob(digest) and remote.get_blob(digest) == data
    assert remote.has_record(key) and remote.get_record(key) == record  # None survives
    assert remote.put_blob(data, check_first=True) is PutResult.PRESENT  # not sent twice

    # The same names as the HTTP protocol, under the prefix; the record is our envelope,
    # byte for byte what the HTTP client writes.
    assert bucket_keys(s3, bucket) == [f"recraft/ac/{key}", f"recraft/cas/{digest}"]
    body = s3.get_object(Bucket=bucket, Key=f"recraft/ac/{key}")["Body"].read()
    assert json.loads(body) == {"format": AC_FORMAT, "key": key, "record": record}
    assert remote.traffic()["sent"] > len(data) and remote.traffic()["received"] >= len(data)
    assert warnings == []
    with pytest.raises(ValueError):
        remote.get_blob("not-a-digest")


def test_a_long_key_is_stored_under_its_sha256_as_over_http(s3, bucket) -> None:
    remote = cache_for(bucket, s3, Warnings(), prefix="")
    key = "style:recraftv3:not a hex digest"
    assert remote.put_record(key, {"style_id": "abc"}) is PutResult.UPLOADED
    assert bucket_keys(s3, bucket) == [f"ac/{sha(key.encode())}"]
    assert remote.get_record(key) == {"style_id": "abc"}


def test_two_local_stores_share_pictures_through_the_bucket(s3, bucket, tmp_path) -> None:
    names = [f"icon-{i}" for i in range(6)]
    provider = Provider()
    laptop_warnings = Warnings()
    with TieredStore(Store(tmp_path / "laptop"), cache_for(bucket, s3, laptop_warnings)) as laptop:
        first = build(laptop, names, provider)
        summary = laptop.flush()
    assert provider.calls == names
    assert summary.blobs_uploaded == 6 and summary.records_uploaded == 6 and summary.failed == 0

    ci_provider = Provider()
    ci_remote = cache_for(bucket, s3, Warnings(), mode="read")
    with TieredStore(Store(tmp_path / "ci"), ci_remote) as ci:
        second = build(ci, names, ci_provider)
        summary = ci.flush()
    assert ci_provider.calls == []  # every picture came from the bucket
    assert second == first
    assert summary.records_downloaded == 6 and summary.blobs_downloaded == 6
    # ...and is now local: a third build needs neither the bucket nor the provider.
    again = Store(tmp_path / "ci")
    assert all(again.get_record(action_key(n)) for n in names)
    again.close()
    assert laptop_warnings == []


def test_read_mode_never_writes(s3, bucket, tmp_path) -> None:
    warnings = Warnings()
    remote = cache_for(bucket, s3, warnings, mode="read")
    data = b"picture" * 10
    assert not remote.can_write
    assert remote.put_blob(data) is PutResult.SKIPPED
    assert remote.put_record(action_key("x"), {"picture": {"sha256": sha(data)}}) is PutResult.SKIPPED
    assert remote.traffic()["requests"] == 0

    provider = Provider()
    with TieredStore(Store(tmp_path / "laptop"), remote) as store:
        build(store, ["a", "b", "c"], provider)
        summary = store.flush()
    assert provider.calls == ["a", "b", "c"]  # looked up (misses), made locally
    assert summary.uploaded == 0
    assert bucket_keys(s3, bucket) == []
    assert warnings == []


def test_endpoint_down_is_one_warning_then_misses(aws_env, tmp_path) -> None:
    client = s3_client({**aws_env, S3_ENDPOINT_ENV: f"http://127.0.0.1:{free_port()}"})
    warnings = Warnings()
    remote = cache_for("team-cache", client, warnings)
    provider = Provider()
    with TieredStore(Store(tmp_path / "laptop"), remote) as store:
        pictures = build(store, [f"icon-{i}" for i in range(5)], provider)
        summary = store.flush()
    client.close()
    assert len(pictures) == 5 and len(provider.calls) == 5  # the build went on locally
    assert len(warnings) == 1, warnings
    assert "not usable" in warnings[0] and "127.0.0.1" in warnings[0]
    assert "local cache only" in warnings[0]
    assert not remote.available
    # One round of retries for the whole build, then no more requests.
    assert remote.traffic()["requests"] == RemotePolicy().retries + 1
    assert summary.failed == 0


def test_endpoint_down_under_many_threads_is_still_one_warning(aws_env) -> None:
    client = s3_client({**aws_env, S3_ENDPOINT_ENV: f"http://127.0.0.1:{free_port()}"})
    warnings = Warnings()
    remote = cache_for("team-cache", client, warnings)
    start = threading.Barrier(8)
    results: list[bytes | None] = []

    def lookup(i: int) -> None:
        start.wait()
        results.append(remote.get_blob(sha(str(i).encode())))

    threads = [threading.Thread(target=lookup, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert results == [None] * 8
    assert len(warnings) == 1, warnings


def test_missing_bucket_is_one_warning_then_misses(s3, tmp_path) -> None:
    warnings = Warnings()
    remote = cache_for("no-such-bucket-here", s3, warnings)
    provider = Provider()
    with TieredStore(Store(tmp_path / "laptop"), remote) as store:
        build(store, ["a", "b", "c"], provider)
    assert len(provider.calls) == 3
    assert len(warnings) == 1, warnings
    assert "'no-such-bucket-here' does not exist" in warnings[0]
    assert remote.traffic()["requests"] == 1


# Answers moto does not give (it accepts any key and grants every request) are canned
# with botocore's Stubber on a real client: no request leaves the process, and a call
# the test did not expect fails the test (Stubber raises, and S3Cache must not swallow it).


@pytest.fixture
def stubbed(aws_env) -> Iterator[tuple[Any, Any]]:
    from botocore.stub import Stubber

    client = s3_client(aws_env)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()
    client.close()


def body(data: bytes) -> dict[str, Any]:
    from botocore.response import StreamingBody

    return {"Body": StreamingBody(io.BytesIO(data), len(data))}


def test_refused_credentials_are_one_warning_then_silence(stubbed) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "get_object", "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist",
        http_status_code=403,
    )
    warnings = Warnings()
    remote = cache_for("team-cache", client, warnings)
    assert remote.get_blob(sha(b"x")) is None
    # Unavailable now: no further request (the stub has no more answers to give).
    assert remote.get_record(action_key("x")) is None
    assert remote.put_blob(b"x") is PutResult.SKIPPED and not remote.has_blob(sha(b"x"))
    assert len(warnings) == 1 and "InvalidAccessKeyId" in warnings[0]
    assert "AWS_SECRET_ACCESS_KEY" in warnings[0]  # says what to check...
    assert SECRET not in warnings[0]  # ...never its value


def test_access_denied_read_is_a_miss_and_denied_upload_turns_uploads_off(stubbed) -> None:
    client, stub = stubbed
    data = b"picture"
    stub.add_client_error("get_object", "AccessDenied", "Access Denied", http_status_code=403)
    stub.add_client_error("head_object", "403", "Forbidden", http_status_code=403)
    stub.add_client_error("put_object", "AccessDenied", "Access Denied", http_status_code=403)
    stub.add_response("get_object", body(data))
    warnings = Warnings()
    remote = cache_for("team-cache", client, warnings)
    # A credential without s3:ListBucket sees a missing object as 403: a miss, not "stop".
    assert remote.get_blob(sha(data)) is None
    assert remote.has_blob(sha(data)) is False
    assert remote.available and len(warnings) == 1 and "s3:ListBucket" in warnings[0]
    # A read-only credential: the first refused upload turns uploads off, reads go on.
    assert remote.put_blob(data, check_first=False) is PutResult.FAILED
    assert not remote.can_write and remote.put_blob(data) is PutResult.SKIPPED
    assert remote.put_record(action_key("x"), {}) is PutResult.SKIPPED
    assert len(warnings) == 2 and "--remote-cache-mode read" in warnings[1]
    assert remote.get_blob(sha(data)) == data


def test_throttling_is_retried_and_a_failing_server_turns_unavailable(stubbed) -> None:
    client, stub = stubbed
    data = b"picture"
    stub.add_client_error("get_object", "SlowDown", "Please reduce your request rate", http_status_code=503)
    stub.add_response("get_object", body(data))
    for _ in range(RemotePolicy().retries + 1):
        stub.add_client_error("put_object", "InternalError", "We encountered an internal error", http_status_code=500)
    waits: list[float] = []
    warnings = Warnings()
    remote = cache_for("team-cache", client, warnings, sleep=waits.append)
    assert remote.get_blob(sha(data)) == data  # the retry got it
    assert warnings == [] and waits == [RemotePolicy().delay(0)]
    assert remote.put_blob(data, check_first=False) is PutResult.SKIPPED
    assert not remote.available
    assert len(warnings) == 1 and "InternalError (HTTP 500)" in warnings[0]


def test_no_credentials_is_one_warning_and_misses(monkeypatch, aws_env) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = s3_client(aws_env)
    warnings = Warnings()
    remote = cache_for("team-cache", client, warnings)
    assert remote.get_blob(sha(b"x")) is None
    assert remote.get_record(action_key("x")) is None
    assert remote.put_blob(b"x") is PutResult.SKIPPED
    client.close()
    assert len(warnings) == 1 and "no AWS credentials" in warnings[0]


def test_corrupted_object_is_caught_by_the_digest_check(s3, bucket, tmp_path) -> None:
    provider = Provider()
    with TieredStore(Store(tmp_path / "laptop"), cache_for(bucket, s3, Warnings())) as laptop:
        good = build(laptop, ["hero"], provider)["hero"]
    digest = sha(good)
    # Someone (or a broken sync) overwrites the object with other bytes.
    s3.put_object(Bucket=bucket, Key=f"recraft/cas/{digest}", Body=b"not the picture")

    warnings = Warnings()
    remote = cache_for(bucket, s3, warnings)
    assert remote.get_blob(digest) is None
    assert len(warnings) == 1 and "wrong bytes" in warnings[0] and digest[:12] in warnings[0]

    # Through the tiered store: the record is ignored and the picture is made locally.
    warnings.clear()
    ci_provider = Provider()
    with TieredStore(Store(tmp_path / "ci"), remote) as ci:
        again = build(ci, ["hero"], ci_provider)
        assert ci.local.get_blob(digest) == good
    assert ci_provider.calls == ["hero"] and again["hero"] == good
    assert any("wrong bytes" in w for w in warnings)


def test_record_envelope_for_another_key_is_refused(s3, bucket) -> None:
    warnings = Warnings()
    remote = cache_for(bucket, s3, warnings)
    key_a, key_b = action_key("a"), action_key("b")
    assert remote.put_record(key_a, {"picture": {"sha256": sha(b"a")}}) is PutResult.UPLOADED
    # B's name holds A's envelope (a copy gone wrong): B must not get A's picture.
    body = s3.get_object(Bucket=bucket, Key=f"recraft/ac/{key_a}")["Body"].read()
    s3.put_object(Bucket=bucket, Key=f"recraft/ac/{key_b}", Body=body)
    assert remote.get_record(key_b) is None
    assert len(warnings) == 1 and "unreadable action record" in warnings[0]
    # Not our JSON at all (e.g. a Bazel ActionResult): refused the same way.
    s3.put_object(Bucket=bucket, Key=f"recraft/ac/{key_b}", Body=b"\x0a\x02pb")
    assert remote.get_record(key_b) is None
    assert len(warnings) == 2
    assert remote.get_record(key_a) == {"picture": {"sha256": sha(b"a")}}
    assert remote.available  # a bad entry is a miss, not a dead remote


def test_same_interface_as_the_http_client() -> None:
    public = {
        name for name in dir(RemoteCache) if not name.startswith("_")
    }
    assert public <= set(dir(S3Cache)), public - set(dir(S3Cache))


# --------------------------------------------------------------------------- whole build

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [a, b, c]}
    prompt: "flat game icon {{ item }}"
    steps: [{resize: {width: 64}}]
    output: "icons/{{ item }}.png"
"""


def cli_build(root: Path, cache: Path, url: str, *args: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["build", "-f", str(root / "assets.yaml"), "--cache-dir", str(cache), "--json",
            "--provider", "placeholder", "--remote-cache", url, *args]
    code = main(argv, stdout=out, stderr=err)
    return code, json.loads(out.getvalue()) if out.getvalue().strip() else None, err.getvalue()


def test_cli_build_shares_through_a_bucket_and_frozen_ci_restores(s3, bucket, aws_env, tmp_path) -> None:
    url = f"s3://{bucket}/recraft"
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "assets.yaml").write_text(SPEC)
    code, data, err = cli_build(laptop, tmp_path / "cache-laptop", url)
    assert code == 0, err
    assert data["summary"]["generated"] == 3
    keys = bucket_keys(s3, bucket)
    assert any(k.startswith("recraft/cas/") for k in keys) and any(k.startswith("recraft/ac/") for k in keys)

    # CI: a fresh clone (spec + lock only), an empty cache folder, --frozen, read only.
    ci = tmp_path / "ci"
    ci.mkdir()
    shutil.copy(laptop / "assets.yaml", ci / "assets.yaml")
    shutil.copy(laptop / "assets.lock", ci / "assets.lock")
    code, data, err = cli_build(ci, tmp_path / "cache-ci", url, "--frozen", "--remote-cache-mode", "read")
    assert code == 0, err
    assert data["summary"]["restored"] == 3 and data["summary"]["generated"] == 0
    for item in "abc":
        assert (ci / "out" / "icons" / f"{item}.png").read_bytes() == (laptop / "out" / "icons" / f"{item}.png").read_bytes()
    assert bucket_keys(s3, bucket) == keys  # read mode wrote nothing
    assert SECRET not in err

    # The same frozen build without the bucket fails, naming what is missing: the
    # pictures above really came from the bucket.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(laptop / "assets.yaml", fresh / "assets.yaml")
    shutil.copy(laptop / "assets.lock", fresh / "assets.lock")
    code, data, err = cli_build(fresh, tmp_path / "cache-fresh", f"s3://{bucket}-absent/recraft", "--frozen")
    assert code == 3, err
    assert "icon-a" in err and "does not exist" in err
