#!/usr/bin/python3
"""An independent KBS client for testing cc-kbs, written from the wire reference
(../shared/reference/attestation-kbs.md) and not from cc-kbs's code: Trustee's protocol
0.4.0 (RCAR auth/attest, resources as JWE), Trustee's error bodies, Trustee's admin API
with an EdDSA JWT. JWE responses are decrypted with Debian's python3-jwcrypto, an outside
implementation. SEV-SNP evidence is made here: a test EC P-384 chain (ARK -> ASK -> VCEK)
signs 1184-byte reports, sent in the sev crate's serde JSON form.

  kbs-client.py snp-chain DIR            writes ark/ask/vcek (+ a rogue chain) to DIR
  kbs-client.py suite --url U ...        runs every check, prints "ok"/"not ok" lines
  kbs-client.py rounds --url U -n N -c C attest+resource rounds, prints latency percentiles
  kbs-client.py image-keys --url U --manifest F   the guest's unwrap flow (ref 6.3) for every
                                         encrypted layer: fetch the packet's kid from the KBS
                                         after attestation, AES-GCM-unwrap the layer options
"""
import argparse
import base64
import datetime
import email.utils
import hashlib
import http.client
import json
import os
import re
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from jwcrypto import jwe as jj
from jwcrypto import jwk as jk

ERR = "https://github.com/confidential-containers/kbs/errors/"
ATTEST_FAILED = "Attestation error: RCAR handshake Attest failed"


def b64(b):
    return base64.b64encode(b).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jcs(v):
    """RFC 8785 for the values we hash: strings and objects with ASCII keys."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---- TEE keys (ref 1.6) ----

class TeeKey:
    def __init__(self, kind="ec256", alg=None):
        self.kind = kind
        if kind.startswith("ec"):
            curve = {"ec256": ec.SECP256R1(), "ec521": ec.SECP521R1(), "ec384": ec.SECP384R1()}[kind]
            self.priv = ec.generate_private_key(curve)
            n = {"ec256": 32, "ec521": 66, "ec384": 48}[kind]
            pub = self.priv.public_key().public_numbers()
            crv = {"ec256": "P-256", "ec521": "P-521", "ec384": "P-384"}[kind]
            self.jwk = {"kty": "EC", "crv": crv, "alg": alg or "ECDH-ES+A256KW",
                        "x": b64url(pub.x.to_bytes(n, "big")), "y": b64url(pub.y.to_bytes(n, "big"))}
        else:
            self.priv = rsa.generate_private_key(65537, 2048)
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "alg": alg or "RSA-OAEP-256",
                        "n": b64url(pub.n.to_bytes(256, "big")), "e": "AQAB"}

    def decrypt(self, body):
        key = jk.JWK.from_pyca(self.priv)
        t = jj.JWE()
        t.deserialize(body, key=key)
        return t.payload


# ---- HTTP ----

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Kbs:
    def __init__(self, url, cacert=None):
        u = urllib.parse.urlsplit(url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port
        self.ctx = None
        if self.https:
            self.ctx = ssl.create_default_context(cafile=cacert)

    def conn(self):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def req(self, method, path, body=None, headers=None, cookie=None, ctype=None):
        h = {"User-Agent": "attestation-agent-kbs-client/0.4.0-test"}
        if ctype:
            h["Content-Type"] = ctype
        if cookie:
            h["Cookie"] = "kbs-session-id=" + cookie
        h.update(headers or {})
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Resp(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def auth(self, tee="sample", version="0.4.0", raw=None):
        body = raw if raw is not None else json.dumps(
            {"version": version, "tee": tee,
             "extra-params": {"supported-hash-algorithms": ["sha256", "sha384", "sha512", "sm3"]}}).encode()
        return self.req("POST", "/kbs/v0/auth", body, ctype="application/json")

    def attest(self, cookie, body):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return self.req("POST", "/kbs/v0/attest", body, cookie=cookie, ctype="application/json")

    def resource(self, path, cookie=None, token=None):
        h = {"Authorization": "Bearer " + token} if token else None
        return self.req("GET", "/kbs/v0/resource/" + path, headers=h, cookie=cookie)


def session_cookie(r):
    sc = r.header("Set-Cookie")
    m = re.fullmatch(r"kbs-session-id=([0-9a-f]{32}); Expires=(.+)", sc or "")
    return (m.group(1), m.group(2)) if m else (None, None)


# ---- evidence ----

def runtime_digest(nonce, jwk, additional=""):
    material = jcs({"tee-pubkey": jwk, "nonce": nonce, "additional-evidence": additional})
    return hashlib.sha384(material).digest()


def attest_body(nonce, jwk, evidence, init_data=None, additional=""):
    return {"init-data": init_data, "runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
            "tee-evidence": {"primary_evidence": evidence, "additional_evidence": additional}}


def sample_evidence(digest):
    return {"svn": "1", "report_data": b64(digest)}


class SnpChain:
    """A test-made EC P-384 chain: ARK (self-signed) -> ASK -> VCEK."""

    # AMD's VCEK TCB extensions (blSPL, teeSPL, snpSPL, ucodeSPL), DER INTEGERs.
    TCB_OIDS = {"bootloader": "1.3.6.1.4.1.3704.1.3.1", "tee": "1.3.6.1.4.1.3704.1.3.2",
                "snp": "1.3.6.1.4.1.3704.1.3.3", "microcode": "1.3.6.1.4.1.3704.1.3.8"}
    TCB = {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}

    def __init__(self, name="test", tcb=None):
        def der_int(v):
            b = v.to_bytes((v.bit_length() + 8) // 8 or 1, "big")
            return bytes([2, len(b)]) + b

        def cert(subject, key, issuer, issuer_key, ca):
            now = datetime.datetime(2025, 1, 1)
            b = (x509.CertificateBuilder()
                 .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                 .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                 .public_key(key.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
                 .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
            if not ca:
                for k, oid in SnpChain.TCB_OIDS.items():
                    b = b.add_extension(x509.UnrecognizedExtension(
                        x509.ObjectIdentifier(oid), der_int((tcb or SnpChain.TCB)[k])), critical=False)
            return b.sign(issuer_key, hashes.SHA384())
        self.ark_key = ec.generate_private_key(ec.SECP384R1())
        self.ask_key = ec.generate_private_key(ec.SECP384R1())
        self.vcek_key = ec.generate_private_key(ec.SECP384R1())
        self.ark = cert("ARK-" + name, self.ark_key, "ARK-" + name, self.ark_key, True)
        self.ask = cert("SEV-" + name, self.ask_key, "ARK-" + name, self.ark_key, True)
        self.vcek = cert("SEV-VCEK", self.vcek_key, "SEV-" + name, self.ask_key, False)

    def save(self, d):
        for n in ("ark", "ask", "vcek"):
            with open(os.path.join(d, n + ".pem"), "wb") as f:
                f.write(getattr(self, n).public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(d, "vcek-key.pem"), "wb") as f:
            f.write(self.vcek_key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))

    @staticmethod
    def load(d):
        c = SnpChain.__new__(SnpChain)
        with open(os.path.join(d, "vcek-key.pem"), "rb") as f:
            c.vcek_key = serialization.load_pem_private_key(f.read(), None)
        with open(os.path.join(d, "vcek.pem"), "rb") as f:
            c.vcek = x509.load_pem_x509_certificate(f.read())
        return c


def snp_report(chain, report_data, host_data=b"\0" * 32, measurement=b"\x11" * 48, vmpl=0,
               turin=False, version=3, tamper=False):
    """The 1184-byte ATTESTATION_REPORT (ref 4.2 layout) and its sev-crate serde JSON."""
    r = bytearray(0x4A0)
    fam, mod = (0x1A, 0x02) if turin else (0x19, 0x01)
    tcb = dict(SnpChain.TCB, fmc=1 if turin else None)

    def tcb_bytes(t):
        b = bytearray(8)
        if turin:
            b[0], b[1], b[2], b[3] = t["fmc"], t["bootloader"], t["tee"], t["snp"]
        else:
            b[0], b[1], b[6] = t["bootloader"], t["tee"], t["snp"]
        b[7] = t["microcode"]
        return bytes(b)
    fields = {
        "family_id": (0x10, bytes(range(16))), "image_id": (0x20, bytes(range(16, 32))),
        "report_data": (0x50, report_data.ljust(64, b"\0")), "measurement": (0x90, measurement),
        "host_data": (0xC0, host_data), "id_key_digest": (0xE0, b"\x22" * 48),
        "author_key_digest": (0x110, b"\0" * 48), "report_id": (0x140, b"\x33" * 32),
        "report_id_ma": (0x160, b"\xff" * 32), "chip_id": (0x1A0, b"\x44" * 64),
    }
    struct.pack_into("<IIQ", r, 0, version, 7, 0x30000)
    struct.pack_into("<II", r, 0x30, vmpl, 1)
    struct.pack_into("<Q", r, 0x40, 3)
    struct.pack_into("<I", r, 0x48, 0)
    for off, val in fields.values():
        r[off:off + len(val)] = val
    for off in (0x38, 0x180, 0x1E0, 0x1F0):
        r[off:off + 8] = tcb_bytes(tcb)
    r[0x188], r[0x189], r[0x18A] = fam, mod, 1
    r[0x1E8:0x1EB] = bytes([21, 55, 1])  # build, minor, major
    r[0x1EC:0x1EF] = bytes([21, 55, 1])
    if version >= 5:
        struct.pack_into("<QQ", r, 0x1F8, 5, 6)
    der = chain.vcek_key.sign(bytes(r[:0x2A0]), ec.ECDSA(hashes.SHA384()))
    rr, ss = decode_dss_signature(der)
    r[0x2A0:0x2E8] = rr.to_bytes(72, "little")
    r[0x2E8:0x330] = ss.to_bytes(72, "little")
    if tamper:
        r[0x90] ^= 1
    j = {"version": version, "guest_svn": 7, "policy": 0x30000}
    for k, (off, val) in fields.items():
        j[k] = list(r[off:off + len(val)])
    j.update({"vmpl": vmpl, "sig_algo": 1, "current_tcb": tcb, "plat_info": 3, "key_info": 0,
              "reported_tcb": tcb, "cpuid_fam_id": fam, "cpuid_mod_id": mod, "cpuid_step": 1,
              "committed_tcb": tcb, "current": {"major": 1, "minor": 55, "build": 21},
              "committed": {"major": 1, "minor": 55, "build": 21}, "launch_tcb": tcb,
              "launch_mit_vector": 5 if version >= 5 else None,
              "current_mit_vector": 6 if version >= 5 else None,
              "signature": {"r": list(r[0x2A0:0x2E8]), "s": list(r[0x2E8:0x330])}})
    return bytes(r), j


def snp_evidence(chain, digest, with_chain=True, **kw):
    _, rep = snp_report(chain, digest, **kw)
    cc = None
    if with_chain:
        cc = [{"cert_type": "VCEK", "data": list(chain.vcek.public_bytes(serialization.Encoding.DER))}]
    return {"attestation_report": rep, "cert_chain": cc}


# The initdata document of ref V12 (exact bytes).
INITDATA = ('version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"aa.toml" = \'\'\'\n'
            '[token_configs]\n[token_configs.kbs]\nurl = "http://10.0.2.2:8080"\n\'\'\'\n\n'
            '"cdh.toml" = \'\'\'\nsocket = "unix:///run/confidential-containers/cdh.sock"\n'
            '[kbc]\nname = "cc_kbc"\nurl = "http://10.0.2.2:8080"\n\'\'\'\n')


# ---- one full round ----

def rcar(kbs, tee="sample", key=None, evidence=None, init_data=None):
    """auth + attest; returns (cookie, token, key, attest response)."""
    key = key or TeeKey()
    a = kbs.auth(tee)
    assert a.status == 200, (a.status, a.body)
    cookie, _ = session_cookie(a)
    nonce = a.json()["nonce"]
    digest = runtime_digest(nonce, key.jwk)
    ev = evidence(digest) if evidence else sample_evidence(digest)
    idata = {"format": "toml", "body": init_data} if init_data is not None else None
    r = kbs.attest(cookie, attest_body(nonce, key.jwk, ev, idata))
    token = r.json().get("token") if r.status == 200 else None
    return cookie, token, key, r


# ---- admin (ref 3.5): EdDSA JWT like Trustee's kbs-client ----

def admin_token(key_pem_path, lifetime=300, now=None):
    with open(key_pem_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    now = int(time.time()) if now is None else now
    h = b64url(json.dumps({"alg": "EdDSA", "typ": "JWT"}).encode())
    c = b64url(json.dumps({"iss": "test", "sub": "admin", "aud": ["KBS"], "role": "admin",
                           "iat": now, "exp": now + lifetime}).encode())
    return h + "." + c + "." + b64url(key.sign((h + "." + c).encode()))


# ---- the suite ----

class Suite:
    def __init__(self, args):
        self.a = args
        self.kbs = Kbs(args.url, args.cacert)
        self.n = 0
        self.failed = 0

    def check(self, name, cond, info=""):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, name))
        else:
            self.failed += 1
            print("not ok %d - %s %s" % (self.n, name, info))

    def error_is(self, name, r, status, variant, detail=None, detail_prefix=None):
        try:
            j = json.loads(r.body)
        except ValueError:
            j = {}
        # Trustee sets no Content-Type on error responses (ref 1.9).
        ok = (r.status == status and j.get("type") == ERR + variant and set(j) == {"type", "detail"}
              and r.header("Content-Type") is None)
        if detail is not None:
            ok = ok and j.get("detail") == detail
        if detail_prefix is not None:
            ok = ok and str(j.get("detail", "")).startswith(detail_prefix)
        self.check(name, ok, "got %s %r" % (r.status, r.body[:300]))

    def admin(self, method, path, body=b"", token=None, ctype="application/octet-stream"):
        h = {"Authorization": "Bearer " + token} if token else {}
        return self.kbs.req(method, "/kbs/v0/" + path, body, headers=h, ctype=ctype)

    def raw_request(self, head):
        """Sends raw request bytes on a fresh connection and reads one response."""
        import socket
        k = self.kbs
        raw = socket.create_connection((k.host, k.port), timeout=30)
        conn = k.ctx.wrap_socket(raw, server_hostname=k.host) if k.https else raw
        try:
            conn.sendall(head)
            data = b""
            while b"\r\n\r\n" not in data:
                part = conn.recv(4096)
                if not part:
                    break
                data += part
            hdr, _, body = data.partition(b"\r\n\r\n")
            lines = hdr.decode(errors="replace").split("\r\n")
            status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
            headers = [tuple(x.split(": ", 1)) for x in lines[1:] if ": " in x]
            length = int(dict((a.lower(), b) for a, b in headers).get("content-length", "0"))
            while len(body) < length:
                part = conn.recv(4096)
                if not part:
                    break
                body += part
            return Resp(status, headers, body)
        finally:
            conn.close()

    def set_policy(self, text, token=None):
        body = json.dumps({"policy": b64url(text.encode())})
        return self.admin("POST", "resource-policy", body, token or admin_token(self.a.admin_key),
                          "application/json")

    def run(self):
        for t in (self.t_auth, self.t_attest, self.t_resource_default_policy, self.t_admin,
                  self.t_policy, self.t_jwe, self.t_snp, self.t_hostile, self.t_lifetimes):
            t()
        print("%d checks, %d failed" % (self.n, self.failed))
        return 1 if self.failed else 0

    def t_auth(self):
        k = self.kbs
        r = k.auth("sample")
        j = r.json()
        self.check("auth: 200 with nonce and empty extra-params",
                   r.status == 200 and set(j) == {"nonce", "extra-params"} and j["extra-params"] == "")
        self.check("auth: nonce is b64 of 32 bytes (44 chars)",
                   len(j["nonce"]) == 44 and len(base64.b64decode(j["nonce"], validate=True)) == 32)
        self.check("auth: Content-Type application/json",
                   (r.header("Content-Type") or "").startswith("application/json"))
        cookie, expires = session_cookie(r)
        self.check("auth: Set-Cookie kbs-session-id=<32 hex>; Expires=<date> only", cookie is not None,
                   r.header("Set-Cookie"))
        if expires:
            exp = email.utils.parsedate_to_datetime(expires).timestamp()
            want = time.time() + self.a.session_timeout
            self.check("auth: cookie expires after the configured session timeout",
                       abs(exp - want) <= 5 and expires.endswith(" GMT"), expires)
        r2 = k.auth("sample")
        self.check("auth: fresh session id and nonce per request",
                   session_cookie(r2)[0] != cookie and r2.json()["nonce"] != j["nonce"])
        self.error_is("auth: version 0.2.0 refused (V14 body)", k.auth("tdx", "0.2.0"), 401,
                      "AttestationError",
                      "Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version "
                      "Mismatch: expect =0.4.0 while the request is 0.2.0")
        deser = "Attestation error: RCAR handshake Auth failed: deserialize Request"
        self.error_is("auth: bad JSON", k.auth(raw=b'{"version": "0.4.0", "tee": '), 401,
                      "AttestationError", deser)
        self.error_is("auth: unknown tee", k.auth("sev"), 401, "AttestationError", deser)
        self.error_is("auth: missing extra-params",
                      k.auth(raw=b'{"version":"0.4.0","tee":"sample"}'), 401, "AttestationError", deser)
        self.check("auth: no cookie on a refusal", k.auth("nope").header("Set-Cookie") is None)

    def t_attest(self):
        k = self.kbs
        key = TeeKey()
        a = k.auth("sample")
        cookie, _ = session_cookie(a)
        nonce = a.json()["nonce"]
        d = runtime_digest(nonce, key.jwk)
        good = attest_body(nonce, key.jwk, sample_evidence(d))
        self.error_is("attest: no cookie", k.attest(None, good), 401, "AttestationError", ATTEST_FAILED)
        self.error_is("attest: unknown cookie", k.attest("0" * 32, good), 401, "AttestationError",
                      ATTEST_FAILED)
        bad = json.loads(json.dumps(good))
        bad["runtime-data"]["nonce"] = ("B" if nonce[0] != "B" else "C") + nonce[1:]
        self.error_is("attest: nonce changed by one char", k.attest(cookie, bad), 401,
                      "AttestationError", ATTEST_FAILED)
        ujwk = dict(key.jwk, use="enc")
        ub = attest_body(nonce, ujwk, sample_evidence(runtime_digest(nonce, ujwk)))
        self.error_is("attest: extra JWK member ('use') breaks the binding", k.attest(cookie, ub),
                      401, "AttestationError", ATTEST_FAILED)
        padded = attest_body(nonce, key.jwk, {"svn": "1", "report_data": b64(d.ljust(64, b"\0"))})
        self.error_is("attest: sample report_data padded to 64 refused", k.attest(cookie, padded),
                      401, "AttestationError", ATTEST_FAILED)
        old = attest_body(nonce, key.jwk, sample_evidence(hashlib.sha384(jcs(
            {"tee-pubkey": key.jwk, "nonce": nonce})).digest()))
        self.error_is("attest: protocol <=0.2.0 digest (no additional-evidence) refused",
                      k.attest(cookie, old), 401, "AttestationError", ATTEST_FAILED)
        noadd = json.loads(json.dumps(good))
        del noadd["tee-evidence"]["additional_evidence"]
        self.error_is("attest: missing additional_evidence", k.attest(cookie, noadd), 401,
                      "AttestationError", ATTEST_FAILED)
        self.error_is("attest: bad JSON", k.attest(cookie, b"{]"), 401, "AttestationError",
                      ATTEST_FAILED)
        r = k.attest(cookie, good)
        tok = r.json().get("token", "") if r.status == 200 else ""
        self.check("attest: valid sample evidence gives 200 {token}", r.status == 200 and
                   set(r.json()) == {"token"} and tok.count(".") == 2, r.body[:200])
        self.check("attest: Set-Cookie repeats the session without extending it",
                   session_cookie(r) == session_cookie(a), (r.header("Set-Cookie"), a.header("Set-Cookie")))
        if tok:
            claims = json.loads(unb64url(tok.split(".")[1]))
            ae = claims["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
            self.check("attest: token carries the typed tee-pubkey and exp",
                       ae["runtime_data_claims"]["tee-pubkey"] == key.jwk and
                       abs(claims["exp"] - claims["iat"] - self.a.token_lifetime) <= 1)
            self.check("attest: token has the sample claims", "sample" in ae and
                       ae["report_data"] == b64(d))
        r2 = k.attest(cookie, good)
        self.check("attest: repeat on an attested session returns the same token (as Trustee)",
                   r2.status == 200 and r2.json().get("token") == tok)
        a3 = k.auth("sample")
        self.error_is("attest: replaying an attest body on a new session (old nonce)",
                      k.attest(session_cookie(a3)[0], good), 401, "AttestationError", ATTEST_FAILED)
        # a session made for one TEE cannot attest with another's evidence
        a4 = k.auth("tdx")
        n4 = a4.json()["nonce"]
        self.error_is("attest: tdx is a stub that refuses",
                      k.attest(session_cookie(a4)[0], attest_body(n4, key.jwk, {"cc_eventlog": None,
                                                                                "quote": b64(b"\0" * 64)})),
                      401, "AttestationError", ATTEST_FAILED)
        a5 = k.auth("snp")
        n5 = a5.json()["nonce"]
        self.error_is("attest: sample evidence in an snp session refused",
                      k.attest(session_cookie(a5)[0], attest_body(n5, key.jwk, sample_evidence(
                          runtime_digest(n5, key.jwk)))), 401, "AttestationError", ATTEST_FAILED)

    def t_resource_default_policy(self):
        k = self.kbs
        self.error_is("resource: no cookie, no token", k.resource("default/key/1"), 401,
                      "TokenNotFound", "Attestation Token not found")
        a = k.auth("sample")
        self.error_is("resource: cookie of a session not attested", k.resource(
            "default/key/1", cookie=session_cookie(a)[0]), 401, "TokenNotFound",
            "Attestation Token not found")
        cookie, tok, key, _ = rcar(k)
        self.error_is("resource: sample TEE denied by the built-in default policy",
                      k.resource("default/key/1", cookie=cookie), 401, "PolicyDeny",
                      "Access denied by policy")
        self.error_is("plugin: unknown first segment is 404", k.req("GET", "/kbs/v0/nebula/x"), 404,
                      "PluginNotFound", "Plugin nebula not found")
        self.error_is("plugin: GET /kbs/v0/auth is no route", k.req("GET", "/kbs/v0/auth"), 404,
                      "PluginNotFound", "Plugin auth not found")

    def t_admin(self):
        k = self.kbs
        good = admin_token(self.a.admin_key)
        pre = "failed to initialize [admin] configuration: "
        self.error_is("admin: POST resource without token", self.admin(
            "POST", "resource/default/key/2", b"x"), 401, "AdminAuthInitialization", detail_prefix=pre)
        self.error_is("admin: token signed by another key", self.admin(
            "POST", "resource/default/key/2", b"x", admin_token(self.a.other_key)), 401,
            "AdminAuthInitialization", detail_prefix=pre)
        self.error_is("admin: expired token", self.admin(
            "POST", "resource/default/key/2", b"x",
            admin_token(self.a.admin_key, 60, int(time.time()) - 3600)), 401,
            "AdminAuthInitialization", detail_prefix=pre)
        h, c, s = good.split(".")
        forged = h + "." + b64url(json.dumps({"exp": int(time.time()) + 9999}).encode()) + "." + s
        self.error_is("admin: claims swapped under a valid signature", self.admin(
            "POST", "resource/default/key/2", b"x", forged), 401, "AdminAuthInitialization",
            detail_prefix=pre)
        self.error_is("admin: policy without token", self.set_policy("version = 1\n", "x.y.z"), 401,
                      "AdminAuthAccess", detail_prefix="admin access denied for endpoint resource-policy: ")
        r = self.admin("POST", "resource/default/key/2", b"second secret", good)
        self.check("admin: POST resource with a valid token is 200 with an empty body",
                   r.status == 200 and r.body == b"", (r.status, r.body))
        self.error_is("admin: bad resource path", self.admin("POST", "resource/default/key", b"x", good),
                      401, "PluginInternalError", "Plugin internal error")
        r = self.admin("DELETE", "resource/default/key/2", None, good)
        self.check("admin: DELETE resource", r.status == 200, (r.status, r.body))
        self.error_is("admin: DELETE of a missing resource", self.admin(
            "DELETE", "resource/default/key/2", None, good), 401, "PluginInternalError")
        r = self.admin("GET", "resource-policy", None, good)
        self.check("admin: GET resource-policy lists the policy id",
                   r.status == 200 and r.json() == ["resource-policy"], r.body)

    def t_policy(self):
        k = self.kbs
        meas = "ab" * 48
        digest = hashlib.sha384(INITDATA.encode()).hexdigest()
        pol = ('version = 1\ndefault = "deny"\n\n'
               '[[rule]]\nresources = ["default/key/*"]\ntee = ["sample", "snp"]\nallow = true\n\n'
               '[[rule]]\nresources = ["default/snp-only/*"]\ntee = ["snp"]\nmeasurement = ["%s"]\n'
               'allow = true\n\n'
               '[[rule]]\nresources = ["default/initdata/*"]\ninit_data = ["%s"]\nallow = true\n'
               % (meas.upper(), digest))
        self.error_is("policy: invalid policy refused", self.set_policy("version = 2\n"), 401,
                      "PolicyEngine")
        self.error_is("policy: unknown key refused", self.set_policy(
            'version = 1\n[[rule]]\nresources = ["*/*/*"]\nallow = true\ntypo = 1\n'), 401, "PolicyEngine")
        padded = json.dumps({"policy": base64.b64encode(pol.encode()).decode()})
        self.error_is("policy: standard base64 (padded) refused", self.admin(
            "POST", "resource-policy", padded, admin_token(self.a.admin_key), "application/json"),
            401, "PolicyEngine")
        r = self.set_policy(pol)
        self.check("policy: set through the admin API", r.status == 200, r.body)
        tok = admin_token(self.a.admin_key)
        for p in ("default/snp-only/1", "default/initdata/1"):
            self.admin("POST", "resource/" + p, b"value of " + p.encode(), tok)
        cookie, _, key, _ = rcar(k)
        r = k.resource("default/key/1", cookie=cookie)
        self.check("policy: sample may read default/key/1 (stored by the cc-kbs CLI)",
                   r.status == 200 and key.decrypt(r.body) == self.a.secret.encode(), r.body[:200])
        self.error_is("policy: sample may not read default/snp-only/1",
                      k.resource("default/snp-only/1", cookie=cookie), 401, "PolicyDeny")
        self.error_is("policy: no rule for default/other/1 -> default deny",
                      k.resource("default/other/1", cookie=cookie), 401, "PolicyDeny")
        self.error_is("policy: sample without initdata may not read default/initdata/1",
                      k.resource("default/initdata/1", cookie=cookie), 401, "PolicyDeny")
        c2, _, key2, r2 = rcar(k, init_data=INITDATA)
        self.check("policy: sample attests with the V12 initdata", r2.status == 200, r2.body)
        if r2.status == 200:
            tok2 = r2.json()["token"]
            ae = json.loads(unb64url(tok2.split(".")[1]))["submods"]["cpu0"][
                "ear.veraison.annotated-evidence"]
            self.check("policy: token has init_data (b64 of the digest) and parsed init_data_claims",
                       ae.get("init_data") == "7opbzJV7q6grgGvfUHC6o4aCOJ59AIIHtFx85Qq4mZviRMISlxCkYJWfkC4vm+p1"
                       and ae["init_data_claims"]["cdh.toml"]["kbc"]["name"] == "cc_kbc", ae.get("init_data"))
        r = k.resource("default/initdata/1", cookie=c2)
        self.check("policy: ... and may then read default/initdata/1",
                   r.status == 200 and key2.decrypt(r.body) == b"value of default/initdata/1", r.body[:200])
        self.error_is("attest: init-data in json format refused", self._attest_json_initdata(), 401,
                      "AttestationError", ATTEST_FAILED)
        self.error_is("resource: missing resource is 401 PluginInternalError (as Trustee)",
                      k.resource("default/key/missing", cookie=cookie), 401, "PluginInternalError",
                      "Plugin internal error")
        self.error_is("resource: segment starting with '.'", k.resource("default/key/.x", cookie=cookie),
                      401, "PluginInternalError")
        self.error_is("resource: four segments", k.resource("default/key/1/2", cookie=cookie), 401,
                      "PolicyDeny")

    def _attest_json_initdata(self):
        k = self.kbs
        key = TeeKey()
        a = k.auth("sample")
        n = a.json()["nonce"]
        body = attest_body(n, key.jwk, sample_evidence(runtime_digest(n, key.jwk)),
                           {"format": "json", "body": "{}"})
        return k.attest(session_cookie(a)[0], body)

    def t_jwe(self):
        k = self.kbs
        secret = self.a.secret.encode()
        for kind, alg in (("ec256", None), ("ec521", None), ("rsa", "RSA-OAEP-256")):
            cookie, tok, key, r = rcar(k, key=TeeKey(kind, alg))
            g = k.resource("default/key/1", cookie=cookie)
            ok = g.status == 200
            try:
                pt = key.decrypt(g.body) if ok else None
            except Exception as e:  # noqa: BLE001 - reported as a failed check
                pt = repr(e)
            self.check("jwe: %s %s decrypts with jwcrypto" % (kind, key.jwk["alg"]),
                       ok and pt == secret, (g.status, g.body[:200], pt))
            if ok:
                j = json.loads(g.body)
                hdr = unb64url(j["protected"]).decode()
                if kind.startswith("ec"):
                    epk = json.loads(hdr)["epk"]
                    want = ('{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"%s","kty":"EC",'
                            '"x":"%s","y":"%s"}}' % (key.jwk["crv"], epk["x"], epk["y"]))
                    n = 32 if kind == "ec256" else 66
                    self.check("jwe: %s header compact, alg/enc first, epk crv,kty,x,y" % kind,
                               hdr == want and len(unb64url(epk["x"])) == n, hdr)
                    self.check("jwe: %s encrypted_key is a 40-byte AES key wrap" % kind,
                               len(unb64url(j["encrypted_key"])) == 40)
                else:
                    self.check("jwe: RSA header", hdr == '{"alg":"RSA-OAEP-256","enc":"A256GCM"}', hdr)
                self.check("jwe: members and sizes (iv 12, tag 16)",
                           set(j) == {"protected", "encrypted_key", "iv", "ciphertext", "tag"} and
                           len(unb64url(j["iv"])) == 12 and len(unb64url(j["tag"])) == 16)
                self.check("jwe: no Set-Cookie on a resource response", g.header("Set-Cookie") is None)
                self.check("jwe: Content-Type application/json",
                           (g.header("Content-Type") or "").startswith("application/json"))
        cookie, tok, key, _ = rcar(k)
        g = k.resource("default/key/1", token=tok)
        self.check("resource: Authorization: Bearer <token> without a cookie",
                   g.status == 200 and key.decrypt(g.body) == secret, g.body[:200])
        h, c, s = tok.split(".")
        cl = json.loads(unb64url(c))
        cl["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["runtime_data_claims"][
            "tee-pubkey"] = TeeKey().jwk
        forged = h + "." + b64url(json.dumps(cl).encode()) + "." + s
        self.error_is("resource: token with swapped key claims", k.resource("default/key/1", token=forged),
                      401, "TokenVerifierError", "Token Verifier error")
        self.error_is("resource: garbage token", k.resource("default/key/1", token="a.b.c"), 401,
                      "TokenVerifierError", "Token Verifier error")
        for kind, alg, what in (("rsa", "RSA-OAEP", "RSA-OAEP (SHA-1)"), ("ec384", None, "P-384")):
            cookie, tok, key, r = rcar(k, key=TeeKey(kind, alg))
            self.check("jwe: %s key attests (checked only when encrypting)" % what, r.status == 200,
                       r.body[:200])
            self.error_is("jwe: %s key -> JweError" % what, k.resource("default/key/1", cookie=cookie),
                          401, "JweError", "JWE failed")

    def t_snp(self):
        k = self.kbs
        chain = SnpChain.load(self.a.snp_dir)
        rogue = SnpChain.load(os.path.join(self.a.snp_dir, "rogue"))
        meas = bytes.fromhex("ab" * 48)
        cookie, tok, key, r = rcar(k, "snp", evidence=lambda d: snp_evidence(chain, d, measurement=meas))
        self.check("snp: report signed by the VCEK (chain in cert_chain) attests", r.status == 200,
                   r.body[:200])
        if tok:
            ae = json.loads(unb64url(tok.split(".")[1]))["submods"]["cpu0"][
                "ear.veraison.annotated-evidence"]
            self.check("snp: claims expose measurement and host_data (init_data)",
                       ae["snp"]["measurement"] == meas.hex() and ae["init_data"] == "00" * 32, ae)
        g = k.resource("default/snp-only/1", cookie=cookie)
        self.check("snp: policy allows the measured TEE its resource",
                   g.status == 200 and key.decrypt(g.body) == b"value of default/snp-only/1", g.body[:200])
        c2, _, _, _ = rcar(k, "snp", evidence=lambda d: snp_evidence(chain, d))
        self.error_is("snp: other measurement denied by policy",
                      k.resource("default/snp-only/1", cookie=c2), 401, "PolicyDeny")
        _, _, _, r = rcar(k, "snp", evidence=lambda d: snp_evidence(chain, d, turin=True, version=5))
        self.check("snp: Turin TCB layout, report version 5", r.status == 200, r.body[:200])
        host = hashlib.sha384(INITDATA.encode()).digest()[:32]
        _, _, _, r = rcar(k, "snp", evidence=lambda d: snp_evidence(chain, d, host_data=host),
                          init_data=INITDATA)
        self.check("snp: HOST_DATA bound to the initdata digest", r.status == 200, r.body[:200])
        cases = [
            ("HOST_DATA not matching the initdata", dict(host_data=b"\1" * 32), INITDATA, chain),
            ("bad signature (report altered after signing)", dict(tamper=True), None, chain),
            ("VCEK of a chain not rooted in the configured ARK", {}, None, rogue),
            ("VCEK of the right chain but another TCB (microcode 100, report 115)", {}, None,
             SnpChain.load(os.path.join(self.a.snp_dir, "oldtcb"))),
            ("VMPL 1", dict(vmpl=1), None, chain),
            ("report version 2", dict(version=2), None, chain),
        ]
        for what, kw, idata, ch in cases:
            _, _, _, r = rcar(k, "snp", evidence=lambda d, kw=kw, ch=ch: snp_evidence(ch, d, **kw),
                              init_data=idata)
            self.error_is("snp: " + what, r, 401, "AttestationError", ATTEST_FAILED)
        _, _, _, r = rcar(k, "snp", evidence=lambda d: snp_evidence(chain, b"\0" * 48))
        self.error_is("snp: REPORT_DATA not bound to the runtime data", r, 401, "AttestationError",
                      ATTEST_FAILED)
        _, _, _, r = rcar(k, "snp", evidence=lambda d: snp_evidence(chain, d, with_chain=False))
        self.error_is("snp: no VCEK configured and none sent", r, 401, "AttestationError", ATTEST_FAILED)

    def t_hostile(self):
        k = self.kbs
        # Over the limit by Content-Length: refused before the body is read (the client waits
        # for "100 Continue" and gets the 413 instead, so no race with the server's close).
        r = self.raw_request(b"POST /kbs/v0/auth HTTP/1.1\r\nHost: kbs\r\nContent-Type: application/json"
                             b"\r\nContent-Length: 3145728\r\nExpect: 100-continue\r\n\r\n")
        self.error_is("hostile: 3 MiB body announced -> 413 before it is sent", r, 413,
                      "PayloadTooLarge", "request body larger than 2097152 bytes")
        # Over the limit while streaming (chunked, no length): cut off; the server must survive.
        try:
            c = k.conn()
            c.putrequest("POST", "/kbs/v0/auth")
            c.putheader("Transfer-Encoding", "chunked")
            c.endheaders()
            chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
            for _ in range(48):
                c.send(chunk)
            c.send(b"0\r\n\r\n")
            st = c.getresponse().status
        except (ConnectionError, http.client.HTTPException, OSError):
            st = 413
        self.check("hostile: 3 MiB chunked body refused (413 or cut off)", st == 413, st)
        deep = b"[" * 100000 + b"]" * 100000
        self.error_is("hostile: 100000-deep JSON", k.auth(raw=deep), 401, "AttestationError")
        self.error_is("hostile: invalid UTF-8", k.auth(raw=b'{"version":"0.4.0","tee":"\xff\xfe",'
                                                       b'"extra-params":""}'), 401, "AttestationError")
        self.error_is("hostile: NUL inside the nonce", k.attest(
            session_cookie(k.auth())[0], b'{"runtime-data":{"nonce":"a\\u0000b"}}'), 401,
            "AttestationError", ATTEST_FAILED)
        self.error_is("hostile: path outside /kbs/v0", k.req("GET", "/etc/passwd"), 404,
                      "InvalidRequestPath")
        self.error_is("hostile: cookie of 1000 chars", k.resource("default/key/1", cookie="a" * 1000),
                      401, "TokenNotFound")
        r = k.req("GET", "/kbs/v0/resource/default/key/1", headers={"X-Big": "a" * 200000})
        self.check("hostile: 200 kB header refused, not served", r.status in (400, 413, 431), r.status)
        self.check("hostile: still serving afterwards", k.auth().status == 200)
        h = k.req("GET", "/healthz")
        self.check("GET /healthz is 200", h.status == 200, h.status)
        if self.a.idle_timeout:
            # A client that sends half a request and stalls is cut off after the idle timeout.
            import socket
            raw = socket.create_connection((k.host, k.port), timeout=self.a.idle_timeout + 10)
            conn = k.ctx.wrap_socket(raw, server_hostname=k.host) if k.https else raw
            conn.sendall(b"POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            try:
                got = conn.recv(100)
            except TimeoutError:  # the server kept it open: the check fails
                got = None
            except (ConnectionError, ssl.SSLError, OSError):
                got = b""
            conn.close()
            self.check("hostile: a stalled request is closed by the server (idle timeout)",
                       got is not None and (got == b"" or got.startswith(b"HTTP/1.1 408")), got)

    def t_lifetimes(self):
        k = self.kbs
        cookie, tok, key, r = rcar(k)
        a = k.auth("sample")
        idle_cookie = session_cookie(a)[0]
        nonce = a.json()["nonce"]
        self.check("lifetime: attested session works before expiry",
                   k.resource("default/key/1", cookie=cookie).status == 200)
        time.sleep(max(self.a.session_timeout, self.a.token_lifetime) + 1.5)
        self.error_is("lifetime: attest on an expired session",
                      k.attest(idle_cookie, attest_body(nonce, key.jwk, sample_evidence(
                          runtime_digest(nonce, key.jwk)))), 401, "AttestationError", ATTEST_FAILED)
        self.error_is("lifetime: cookie of an expired session finds no token",
                      k.resource("default/key/1", cookie=cookie), 401, "TokenNotFound")
        self.error_is("lifetime: expired token refused", k.resource("default/key/1", token=tok), 401,
                      "TokenVerifierError", "Token Verifier error")


def rounds(args):
    kbs = Kbs(args.url, args.cacert)
    lat, errors = [], []
    lock = threading.Lock()

    def worker(n):
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                cookie, tok, key, r = rcar(kbs)
                g = kbs.resource(args.resource, cookie=cookie)
                ok = r.status == 200 and g.status == 200 and key.decrypt(g.body) is not None
            except Exception as e:  # noqa: BLE001 - counted as an error
                ok = False
                with lock:
                    errors.append(repr(e))
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                (lat.append(dt) if ok else errors.append("status"))
    per = args.n // args.c
    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker, args=(per,)) for _ in range(args.c)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")
    print("rounds=%d clients=%d errors=%d wall_s=%.2f rounds_per_s=%.1f p50_ms=%.2f p90_ms=%.2f "
          "p99_ms=%.2f max_ms=%.2f" % (len(lat), args.c, len(errors), wall, len(lat) / wall,
                                       pct(50), pct(90), pct(99), lat[-1] if lat else float("nan")))
    return 1 if errors else 0


def image_keys(args):
    """For each layer of an encrypted manifest: packet -> kid -> KEK from the KBS -> PLBCO."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    kbs = Kbs(args.url, args.cacert)
    with open(args.manifest) as f:
        manifest = json.load(f)
    for layer in manifest["layers"]:
        ann = layer.get("annotations", {})
        packet = json.loads(base64.b64decode(
            ann["org.opencontainers.image.enc.keys.provider.attestation-agent"]))
        assert set(packet) == {"kid", "wrapped_data", "iv", "wrap_type"}, packet
        assert packet["wrap_type"] == "A256GCM" and packet["kid"].startswith("kbs:///")
        cookie, tok, key, r = rcar(kbs)
        assert r.status == 200, r.body
        g = kbs.resource(packet["kid"][len("kbs:///"):], token=tok)  # as the CDH: Bearer token
        assert g.status == 200, g.body
        kek = key.decrypt(g.body)
        plbco = json.loads(AESGCM(kek).decrypt(base64.b64decode(packet["iv"]),
                                               base64.b64decode(packet["wrapped_data"]), None))
        pub = json.loads(base64.b64decode(ann["org.opencontainers.image.enc.pubopts"]))
        assert pub["cipher"] == "AES_256_CTR_HMAC_SHA256" and pub["cipheroptions"] == {}
        assert len(base64.b64decode(plbco["symkey"])) == 32
        assert len(base64.b64decode(plbco["cipheroptions"]["nonce"])) == 16
        print("%s %s %s" % (layer["digest"], plbco["digest"], layer["mediaType"]))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snp-chain")
    s.add_argument("dir")
    s = sub.add_parser("suite")
    s.add_argument("--url", required=True)
    s.add_argument("--cacert")
    s.add_argument("--admin-key", required=True)
    s.add_argument("--other-key", required=True)
    s.add_argument("--snp-dir", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--session-timeout", type=int, default=300)
    s.add_argument("--token-lifetime", type=int, default=300)
    s.add_argument("--idle-timeout", type=int, default=0)
    s = sub.add_parser("rounds")
    s.add_argument("--url", required=True)
    s.add_argument("--cacert")
    s.add_argument("--resource", default="default/key/1")
    s.add_argument("-n", type=int, default=500)
    s.add_argument("-c", type=int, default=1)
    s = sub.add_parser("snp-round")
    s.add_argument("--url", required=True)
    s.add_argument("--snp-dir", required=True)
    s.add_argument("--resource", default="default/key/1")
    s = sub.add_parser("image-keys")
    s.add_argument("--url", required=True)
    s.add_argument("--cacert")
    s.add_argument("--manifest", required=True)
    a = p.parse_args()
    if a.cmd == "snp-chain":
        os.makedirs(os.path.join(a.dir, "rogue"), exist_ok=True)
        chain = SnpChain("test")
        chain.save(a.dir)
        SnpChain("rogue").save(os.path.join(a.dir, "rogue"))
        # Same ARK/ASK, a VCEK for another TCB (an older microcode): signature fine, TCB not.
        old = SnpChain.__new__(SnpChain)
        old.__dict__.update(chain.__dict__)
        old.vcek_key = ec.generate_private_key(ec.SECP384R1())
        now = datetime.datetime(2025, 1, 1)
        b = (x509.CertificateBuilder().subject_name(chain.vcek.subject).issuer_name(chain.ask.subject)
             .public_key(old.vcek_key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650)))
        for k, oid in SnpChain.TCB_OIDS.items():
            v = dict(SnpChain.TCB, microcode=100)[k]
            b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid),
                                                           bytes([2, 1, v])), critical=False)
        old.vcek = b.sign(chain.ask_key, hashes.SHA384())
        os.makedirs(os.path.join(a.dir, "oldtcb"), exist_ok=True)
        old.save(os.path.join(a.dir, "oldtcb"))
        return 0
    if a.cmd == "suite":
        return Suite(a).run()
    if a.cmd == "image-keys":
        return image_keys(a)
    if a.cmd == "snp-round":
        kbs = Kbs(a.url)
        chain = SnpChain.load(a.snp_dir)
        cookie, tok, key, r = rcar(kbs, "snp", evidence=lambda d: snp_evidence(chain, d, with_chain=False))
        if r.status != 200:
            print("attest failed: %d %s" % (r.status, r.body.decode(errors="replace")))
            return 1
        g = kbs.resource(a.resource, cookie=cookie)
        if g.status != 200:
            print("resource failed: %d %s" % (g.status, g.body.decode(errors="replace")))
            return 1
        sys.stdout.buffer.write(key.decrypt(g.body))
        return 0
    return rounds(a)


if __name__ == "__main__":
    sys.exit(main())
