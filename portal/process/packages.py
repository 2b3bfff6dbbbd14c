"""Where pip finds packages for what the portal builds: an application's virtualenv, the msgpack a
gateway's interpreter lacks. A site without internet names its own package index, or a folder of
wheels (a wheelhouse), or both: ``PORTAL_PACKAGE_INDEX`` and ``PORTAL_PACKAGE_FIND_LINKS``.

They become pip's own environment variables (``PIP_INDEX_URL``, ``PIP_NO_INDEX``,
``PIP_FIND_LINKS``) in the build's environment only: never on its command line (an index URL may
carry a token, https://user:token@host/simple, and anyone on the host can read a command line),
and never in an application's environment, which is made from its definition alone. pip itself
masks the password of an index URL in what it prints. Never imports Django.
"""

from __future__ import annotations

import os

NO_INDEX = "none"
URL_SCHEMES = ("https://", "http://", "file://")


def index_environment(index: str, find_links: str) -> dict[str, str]:
    """pip's variables for ``index`` (a URL, ``none`` or empty for pip's own default) and
    ``find_links`` (folders or URLs separated by spaces, as pip reads PIP_FIND_LINKS).
    Raises ValueError with what is wrong and how to fix it."""
    index, links = index.strip(), find_links.split()
    env: dict[str, str] = {}
    for link in links:
        if not (link.startswith(URL_SCHEMES) or os.path.isabs(link)):
            raise ValueError(f"PORTAL_PACKAGE_FIND_LINKS names {link!r}, which is neither a full path nor a URL: "
                             "give each wheel folder's full path (e.g. /srv/wheelhouse) or a URL, separated by "
                             "spaces")
    if links:
        env["PIP_FIND_LINKS"] = " ".join(links)
    if index.lower() == NO_INDEX:
        if not links:
            raise ValueError("PORTAL_PACKAGE_INDEX=none leaves pip nowhere to find packages: set "
                             "PORTAL_PACKAGE_FIND_LINKS to the folder of your wheels (e.g. /srv/wheelhouse), or "
                             "PORTAL_PACKAGE_INDEX to your index's URL")
        env["PIP_NO_INDEX"] = "1"
    elif index:
        if not index.startswith(URL_SCHEMES) or " " in index:
            shown = index.split("@")[-1][:80]  # never the token of a URL that carries one
            raise ValueError(f"PORTAL_PACKAGE_INDEX={shown!r} is not a URL: give your package index's address "
                             "(e.g. https://pypi.example.com/simple), or none to use only "
                             "PORTAL_PACKAGE_FIND_LINKS")
        env["PIP_INDEX_URL"] = index
    return env


def describe(env: dict[str, str]) -> str:
    """Where pip looks, in words, for the build's first line (an index's token masked as pip does)."""
    if not env:
        return "pip's default index"
    parts = []
    if "PIP_INDEX_URL" in env:
        parts.append(f"the index {mask(env['PIP_INDEX_URL'])}")
    if "PIP_NO_INDEX" in env:
        parts.append("no index")
    if "PIP_FIND_LINKS" in env:
        parts.append(f"the links {env['PIP_FIND_LINKS']}")
    return " and ".join(parts)


def mask(url: str) -> str:
    """``url`` with the password of its user part replaced by ****, as pip shows it."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, host = rest.split("@", 1)
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:****@{host}" if ":" in userinfo else f"{scheme}://****@{host}"
