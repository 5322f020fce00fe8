"""Download links: only ours, only for the blob and digest they name, only until they expire."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from registry.downloads import DownloadLinks, LinkRefused

STORED = "sha256:" + "a" * 64
ASKED = "sha512:" + "b" * 128


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def links(clock: Clock, **options: object) -> DownloadLinks:
    return DownloadLinks(key=b"k" * 32, port=9001, ttl_s=60, clock=clock, **options)  # type: ignore[arg-type]


def parts(link: str) -> tuple[str, str, dict[str, str]]:
    split = urlsplit(link)
    query = {key: values[0] for key, values in parse_qs(split.query).items()}
    return f"{split.scheme}://{split.netloc}", split.path, query


def test_a_link_names_the_stored_blob_and_checks_out_until_it_expires() -> None:
    clock = Clock()
    minted = links(clock)
    base, path, query = parts(minted.link(STORED, ASKED, "registry.example"))
    assert base == "http://registry.example:9001"
    assert path == f"/blobs/{STORED}"
    assert query["digest"] == ASKED
    minted.check(STORED, ASKED, query["expires"], query["signature"])
    clock.now += 60
    minted.check(STORED, ASKED, query["expires"], query["signature"])
    clock.now += 1
    with pytest.raises(LinkRefused, match="expired"):
        minted.check(STORED, ASKED, query["expires"], query["signature"])


@pytest.mark.parametrize("field", ["stored", "asked", "expires", "signature"])
def test_changing_any_part_of_a_link_breaks_it(field: str) -> None:
    minted = links(Clock())
    _, _, query = parts(minted.link(STORED, ASKED, "h"))
    claim = {"stored": STORED, "asked": ASKED, **query}
    claim[{"stored": "stored", "asked": "asked"}.get(field, field)] = {
        "stored": "sha256:" + "c" * 64,
        "asked": STORED,
        "expires": str(int(query["expires"]) + 3600),
        "signature": query["signature"][:-1] + "0",
    }[field]
    with pytest.raises(LinkRefused):
        minted.check(claim["stored"], claim["asked"], claim["expires"], claim["signature"])


def test_another_key_does_not_accept_our_links() -> None:
    clock = Clock()
    _, _, query = parts(links(clock).link(STORED, ASKED, "h"))
    other = DownloadLinks(key=b"x" * 32, port=9001, ttl_s=60, clock=clock)
    with pytest.raises(LinkRefused, match="signature"):
        other.check(STORED, ASKED, query["expires"], query["signature"])


@pytest.mark.parametrize("expires", ["", "soon", "-5", "1e9"])
def test_a_link_without_a_valid_expiry_is_refused(expires: str) -> None:
    with pytest.raises(LinkRefused, match="expiry"):
        links(Clock()).check(STORED, ASKED, expires, "00")


def test_the_base_url_is_the_configured_one_or_the_clients_host_name() -> None:
    clock = Clock()
    assert parts(links(clock).link(STORED, ASKED, "::1"))[0] == "http://[::1]:9001"
    proxied = links(clock, base_url="https://blobs.example/dl/")
    assert proxied.link(STORED, ASKED, "ignored").startswith(
        f"https://blobs.example/dl/blobs/{STORED}?"
    )


def test_only_blobs_of_the_minimum_size_are_worth_a_redirect() -> None:
    sized = links(Clock(), min_size=16)
    assert [sized.serves(size) for size in (0, 15, 16, 1 << 30)] == [False, False, True, True]
    assert links(Clock()).serves(0)
