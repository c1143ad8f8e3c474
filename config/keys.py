"""Checks of AEP's SFTP credential: an RSA private key in PEM form, as AEP's SFTP source requires.

AEP's SFTP base connection takes `privateKeyContent`: the base64 of an OpenSSH RSA private key
in PEM form (`-----BEGIN RSA PRIVATE KEY-----`); OpenSSH's newer format and other key types
are refused, so the configuration is checked when it is loaded rather than when a dataflow fails.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["KeyProblem", "check_rsa_pem", "pem_text", "private_key_content"]


class KeyProblem(ValueError):
    """The configured key is not an RSA private key in PEM form (the message says why)."""


def pem_text(value: str) -> str:
    """The PEM text of a key given as PEM or as the base64 of a PEM."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    try:
        decoded = base64.b64decode(text, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise KeyProblem(
            "not a PEM private key (expected '-----BEGIN RSA PRIVATE KEY-----' or its base64)"
        ) from None
    if not decoded.strip().startswith("-----BEGIN"):
        raise KeyProblem("base64 given, but it does not decode to a PEM private key")
    return decoded.strip() + "\n"


def check_rsa_pem(value: str, passphrase: str | None = None) -> None:
    """Refuse anything but a (possibly encrypted) RSA private key in PEM form.

    Raises:
        KeyProblem: with the reason and, where there is one, the command that fixes it.
    """
    text = pem_text(value)
    if "BEGIN OPENSSH PRIVATE KEY" in text:
        raise KeyProblem(
            "OpenSSH key format; AEP needs PEM: convert a copy with "
            "`ssh-keygen -p -m PEM -f <keyfile>`"
        )
    try:
        key = serialization.load_pem_private_key(
            text.encode("ascii"), password=passphrase.encode() if passphrase else None
        )
    except TypeError:
        raise KeyProblem(
            "the key is encrypted: set AEP_BRIDGE_AEP_PULL__PASSPHRASE"
            if not passphrase
            else "the key is not encrypted, but a passphrase is set"
        ) from None
    except (ValueError, UnicodeError):
        raise KeyProblem("not a readable PEM private key (or wrong passphrase)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyProblem(
            f"an RSA key is required; this is {type(key).__name__.removesuffix('PrivateKey')}"
        )


def private_key_content(value: str) -> str:
    """What AEP's `auth.params.privateKeyContent` takes: the base64 of the PEM text."""
    return base64.b64encode(pem_text(value).encode("ascii")).decode("ascii")
