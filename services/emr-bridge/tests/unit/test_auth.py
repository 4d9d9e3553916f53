"""Authentication of EMR clients, without I/O: SMART system scopes and what they allow,
client secrets kept as scrypt hashes, the keys a client may register, client assertions
(private_key_jwt) checked claim by claim, and the token flow over an in-memory store (the
PostgreSQL store is tested in tests/integration/test_auth_store.py)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emr_client import (
    SigningKey,
    assertion_form,
    claims,
    hs256_with,
    jwks,
    sign,
    unsigned,
)

from clinic.emr_bridge import auth
from clinic.emr_bridge.auth import (
    Caller,
    Forbidden,
    JwksError,
    ScopeError,
    TokenError,
    Unauthorized,
    UnknownKeyError,
    check_jwks,
    covered,
    hash_secret,
    parse_scope,
    parse_scopes,
    secret_matches,
    usable_keys,
    verify_assertion,
)
from clinic.emr_bridge.credentials import (
    Authentication,
    IssuedToken,
    RegisteredClient,
    Registration,
)
from clinic.emr_bridge.settings import EmrBridgeSettings

ORG = uuid.uuid4()
OTHER_ORG = uuid.uuid4()
TOKEN_URL = f"https://emr.clinic.example/fhir/{ORG}/auth/token"
RSA = SigningKey.rsa("rsa-1")
EC = SigningKey.ec("ec-1")
OTHER_RSA = SigningKey.rsa("rsa-1")  # same kid, another key


# -- scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "resource_type", "letters"),
    [
        ("system/Appointment.rs", "Appointment", "rs"),
        ("system/Patient.r", "Patient", "r"),
        ("system/Appointment.cud", "Appointment", "cud"),
        ("system/*.rs", "*", "rs"),
        ("system/Appointment.cruds", "Appointment", "cruds"),
        ("system/AuditEvent.rs", "AuditEvent", "rs"),
        ("system/Appointment.read", "Appointment", "rs"),
        ("system/Appointment.write", "Appointment", "cud"),
        ("system/Appointment.*", "Appointment", "cruds"),
        ("system/*.read", "*", "rs"),
    ],
)
def test_system_scopes_name_a_type_or_all_and_the_interactions_they_allow(
    text: str, resource_type: str, letters: str
) -> None:
    scope = parse_scope(text)
    assert (scope.text, scope.resource_type, scope.interactions) == (
        text,
        resource_type,
        frozenset(letters),
    )


@pytest.mark.parametrize(
    "text",
    [
        "patient/Appointment.rs",
        "user/Appointment.rs",
        "launch",
        "openid",
        "system/Appointment.sr",
        "system/Appointment.rrs",
        "system/Appointment.x",
        "system/Appointment.",
        "system/Appointment",
        "system/Observation.rs",
        "system/Appointment.rs?status=booked",
        "system/appointment.rs",
        "",
    ],
)
def test_anything_but_a_system_scope_of_a_served_type_is_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_a_requested_scope_is_covered_when_allowed_scopes_grant_each_of_its_interactions() -> None:
    allowed = parse_scopes(["system/Appointment.rs", "system/Appointment.cud", "system/Patient.r"])
    assert covered(parse_scope("system/Appointment.cruds"), allowed)
    assert covered(parse_scope("system/Appointment.read"), allowed)
    assert covered(parse_scope("system/Patient.r"), allowed)
    assert not covered(parse_scope("system/Patient.rs"), allowed)
    assert not covered(parse_scope("system/*.r"), allowed)
    wildcard = parse_scopes(["system/*.rs"])
    assert covered(parse_scope("system/Slot.s"), wildcard)
    assert covered(parse_scope("system/*.r"), wildcard)
    assert not covered(parse_scope("system/Appointment.c"), wildcard)


def test_a_caller_may_do_what_its_scopes_allow_and_gets_403_forbidden_for_the_rest() -> None:
    caller = Caller("epic", ORG, parse_scopes(["system/Appointment.rs", "system/Patient.r"]))
    caller.require("Appointment", "r")
    caller.require("Appointment", "s")
    caller.require("Patient", "r")
    with pytest.raises(Forbidden) as refused:
        caller.require("Patient", "s")
    assert refused.value.status == 403
    assert refused.value.extensions["fhir_code"] == "forbidden"
    assert "system/Patient.s" in refused.value.detail
    assert 'error="insufficient_scope"' in refused.value.headers["WWW-Authenticate"]
    with pytest.raises(Forbidden):
        caller.require("Appointment", "c")
    with pytest.raises(ValueError, match="c r u d s"):
        caller.require("Appointment", "read")


def test_the_local_development_caller_may_do_everything() -> None:
    caller = auth.local_caller(ORG)
    assert caller.client_id == "local-dev"
    for interaction in "cruds":
        caller.require("Appointment", interaction)
        caller.require("AuditEvent", interaction)


# -- secrets ------------------------------------------------------------------------------------


def test_a_secret_is_kept_as_a_salted_scrypt_hash_that_only_the_secret_matches() -> None:
    secret = "s3cret-of-at-least-32-characters-long"
    first, second = hash_secret(secret), hash_secret(secret)
    assert first.startswith("scrypt$16384$8$1$")
    assert first != second  # a salt of its own
    assert secret not in first
    assert secret_matches(secret, first)
    assert secret_matches(secret, second)
    assert not secret_matches(secret + "x", first)
    assert not secret_matches("", first)
    assert not secret_matches(secret, "plain")
    assert not secret_matches(secret, "bcrypt$1$2$3$4$5")
    assert not secret_matches(secret, "scrypt$16384$8$1$!!$!!")


# -- key sets -----------------------------------------------------------------------------------


def test_public_rs384_and_es384_keys_can_be_registered() -> None:
    registered = check_jwks(jwks(RSA, EC))
    assert [k["kid"] for k in registered["keys"]] == ["rsa-1", "ec-1"]
    assert set(usable_keys(registered)) == {"rsa-1", "ec-1"}


@pytest.mark.parametrize(
    ("key_set", "reason"),
    [
        ({"keys": [RSA.private_jwk()]}, "private"),
        ({"keys": [EC.private_jwk()]}, "private"),
        ({"keys": [{**RSA.public_jwk(), "kid": None}]}, "kid"),
        ({"keys": [RSA.public_jwk(), {**EC.public_jwk(), "kid": "rsa-1"}]}, "twice"),
        (jwks(SigningKey.rsa("small", bits=1024)), "2048"),
        (jwks(SigningKey.ec("p256", ec.SECP256R1())), "P-384"),
        ({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}, "private"),
        ({"keys": [{"kty": "oct", "kid": "h", "alg": "HS256"}]}, "HS256"),
        ({"keys": [{**RSA.public_jwk(), "use": "enc"}]}, "signatures"),
        ({"keys": [{**RSA.public_jwk(), "alg": "RS256"}]}, "RS256"),
        ({"keys": [{**RSA.public_jwk(), "n": "not-a-modulus"}]}, "valid"),
        ({"keys": []}, "at least one"),
        ({"keys": [RSA.public_jwk()], "extra": 1}, "keys"),
    ],
)
def test_key_sets_with_private_weak_or_unsupported_keys_are_refused(
    key_set: dict[str, Any], reason: str
) -> None:
    with pytest.raises(JwksError, match=reason):
        check_jwks(key_set)


def test_a_fetched_key_set_keeps_only_the_keys_that_can_verify() -> None:
    fetched = {"keys": [RSA.public_jwk(), {**EC.public_jwk(), "use": "enc"}, "junk"]}
    assert set(usable_keys(fetched)) == {"rsa-1"}
    assert usable_keys("not a key set") == {}


# -- client assertions --------------------------------------------------------------------------

KEYS = usable_keys(jwks(RSA, EC))


def verify(assertion: str, client_id: str = "epic", now: float | None = None) -> auth.Assertion:
    return verify_assertion(
        assertion,
        KEYS,
        client_id=client_id,
        audience=TOKEN_URL,
        now=time.time() if now is None else now,
    )


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS384", "ES384"])
def test_an_assertion_signed_with_a_registered_key_names_its_client_jti_and_expiry(
    key: SigningKey,
) -> None:
    payload = claims("epic", TOKEN_URL)
    verified = verify(sign(key, payload))
    assert verified.client_id == "epic"
    assert verified.jti == payload["jti"]
    assert verified.expires_at > dt.datetime.fromtimestamp(payload["exp"], dt.UTC)


def refused(assertion: str, match: str, client_id: str = "epic") -> TokenError:
    with pytest.raises(TokenError, match=match) as caught:
        verify(assertion, client_id)
    assert caught.value.error == "invalid_client"
    assert caught.value.status == 401
    return caught.value


def test_an_expired_assertion_is_refused() -> None:
    refused(sign(RSA, claims("epic", TOKEN_URL, lifetime=-60)), "expired")


def test_an_assertion_valid_for_more_than_five_minutes_is_refused() -> None:
    refused(sign(RSA, claims("epic", TOKEN_URL, lifetime=600)), "more than 300 seconds")


def test_an_assertion_for_another_audience_is_refused() -> None:
    other = f"https://emr.clinic.example/fhir/{OTHER_ORG}/auth/token"
    refused(sign(RSA, claims("epic", other)), "aud")
    refused(sign(RSA, claims("epic", TOKEN_URL, aud=None)), "lacks the aud")


def test_an_assertion_whose_subject_is_not_its_issuer_is_refused() -> None:
    refused(sign(RSA, claims("epic", TOKEN_URL, sub="cerner")), "sub")
    refused(sign(RSA, claims("epic", TOKEN_URL, sub=None)), "lacks the sub")


def test_an_assertion_issued_by_another_client_is_refused() -> None:
    refused(sign(RSA, claims("cerner", TOKEN_URL)), "iss")


def test_an_assertion_naming_a_key_the_client_lacks_is_refused_as_an_unknown_kid() -> None:
    error = refused(sign(SigningKey.rsa("rsa-9"), claims("epic", TOKEN_URL)), "no key 'rsa-9'")
    assert isinstance(error, UnknownKeyError)
    refused(sign(RSA, claims("epic", TOKEN_URL), kid=None), "no kid")


def test_an_assertion_signed_with_another_key_under_a_registered_kid_is_refused() -> None:
    refused(sign(OTHER_RSA, claims("epic", TOKEN_URL)), "signature does not verify")


def test_an_unsigned_assertion_is_refused() -> None:
    refused(unsigned(claims("epic", TOKEN_URL), "rsa-1"), "'none'")


def test_an_assertion_signed_with_hs256_and_the_public_key_as_secret_is_refused() -> None:
    refused(hs256_with(RSA.public_pem(), claims("epic", TOKEN_URL), "rsa-1"), "HS256")


def test_an_assertion_signed_with_rs256_is_refused() -> None:
    payload = claims("epic", TOKEN_URL)
    forged = __import__("jwt").encode(payload, RSA.private, "RS256", headers={"kid": "rsa-1"})
    refused(forged, "RS256")


def test_an_assertion_signed_by_an_ec_key_under_an_rsa_kid_is_refused() -> None:
    refused(sign(SigningKey.ec("rsa-1"), claims("epic", TOKEN_URL)), "does not sign with ES384")


def test_an_assertion_pointing_at_keys_elsewhere_than_registered_is_refused() -> None:
    registered = "https://keys.epic.example/jwks.json"
    elsewhere = sign(RSA, claims("epic", TOKEN_URL), jku="https://attacker.example/jwks.json")
    with pytest.raises(TokenError, match="jku"):
        verify_assertion(
            elsewhere, KEYS, client_id="epic", audience=TOKEN_URL, now=time.time(),
            jwks_url=registered,
        )  # fmt: skip
    refused(elsewhere, "jku")  # a client registered with inline keys has no jku
    same = sign(RSA, claims("epic", TOKEN_URL), jku=registered)
    verify_assertion(
        same, KEYS, client_id="epic", audience=TOKEN_URL, now=time.time(), jwks_url=registered
    )


def test_an_assertion_without_jti_or_exp_is_refused() -> None:
    refused(sign(RSA, claims("epic", TOKEN_URL, jti=None)), "lacks the jti")
    refused(sign(RSA, claims("epic", TOKEN_URL, exp=None)), "lacks the exp")
    refused(sign(RSA, claims("epic", TOKEN_URL, jti="x" * 256)), "jti")


def test_an_assertion_not_valid_yet_is_refused() -> None:
    refused(sign(RSA, claims("epic", TOKEN_URL, nbf=int(time.time()) + 120)), "nbf")
    refused(sign(RSA, claims("epic", TOKEN_URL, iat=int(time.time()) + 120)), "iat")


def test_garbage_is_not_an_assertion() -> None:
    refused("not.a.jwt", "not a JWT")
    with pytest.raises(TokenError, match="not a JWT"):
        auth.assertion_client("garbage")
    with pytest.raises(TokenError, match="too long"):
        auth.assertion_client("a" * 9000)


# -- bearer tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [None, "", "Basic abc", "Bearer", "Bearer  ", "Bearer " + "a" * 600, "Bearer a\x01b"]
)
def test_a_request_without_a_well_formed_bearer_token_is_401_with_a_challenge(
    header: str | None,
) -> None:
    with pytest.raises(Unauthorized) as caught:
        auth.bearer_token(header)
    assert caught.value.status == 401
    assert caught.value.extensions["fhir_code"] == "login"
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer realm="clinic emr-bridge"')


def test_the_bearer_scheme_is_case_insensitive() -> None:
    assert auth.bearer_token("bearer abc.def") == "abc.def"
    assert auth.bearer_token("BEARER abc") == "abc"


# -- the token flow, over memory ----------------------------------------------------------------


class MemoryCredentials:
    """The ``CredentialStore`` contract, in memory (PostgreSQL's is tested for real)."""

    def __init__(self) -> None:
        self.registered: dict[tuple[uuid.UUID, str], RegisteredClient] = {}
        self.tokens: dict[bytes, IssuedToken] = {}
        self.jtis: dict[tuple[uuid.UUID, str, str], dt.datetime] = {}

    async def client(self, org: uuid.UUID, client_id: str) -> RegisteredClient | None:
        return self.registered.get((org, client_id))

    async def clients(self, org: uuid.UUID) -> list[RegisteredClient]:
        return sorted(
            (c for (o, _), c in self.registered.items() if o == org), key=lambda c: c.client_id
        )

    async def save_client(
        self, client: RegisteredClient, registration: Registration
    ) -> tuple[RegisteredClient, bool]:
        key = (client.organization, client.client_id)
        existing = self.registered.get(key)
        self.registered[key] = client
        if existing is not None:
            await self.remove_tokens(*key)
        return client, existing is None

    async def remove_client(self, org: uuid.UUID, client_id: str) -> bool:
        await self.remove_tokens(org, client_id)
        return self.registered.pop((org, client_id), None) is not None

    async def remove_tokens(self, org: uuid.UUID, client_id: str) -> None:
        for digest, token in list(self.tokens.items()):
            if (token.organization, token.client_id) == (org, client_id):
                del self.tokens[digest]

    async def first_use(
        self,
        org: uuid.UUID,
        client_id: str,
        jti: str,
        expires_at: dt.datetime,
        now: dt.datetime,
    ) -> bool:
        seen = self.jtis.get((org, client_id, jti))
        if seen is not None and seen >= now:
            return False
        self.jtis[(org, client_id, jti)] = expires_at
        return True

    async def save_token(self, digest: bytes, token: IssuedToken) -> None:
        self.tokens[digest] = token

    async def token(self, digest: bytes, now: dt.datetime) -> IssuedToken | None:
        found = self.tokens.get(digest)
        return found if found is not None and found.expires_at > now else None


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Fetcher:
    def __init__(self, key_set: dict[str, Any]) -> None:
        self.key_set = key_set
        self.fetched = 0

    async def __call__(self, url: str) -> Any:
        self.fetched += 1
        return self.key_set


SECRET = "a-client-secret-of-more-than-32-characters"
SCOPES = ("system/Appointment.rs", "system/Patient.r")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(jwks(RSA))


@pytest.fixture
async def authentication(clock: Clock, fetcher: Fetcher) -> Authentication:
    settings = EmrBridgeSettings(token_seconds=300)
    found = Authentication(MemoryCredentials(), settings, clock=clock, fetch=fetcher)
    await found.register(ORG, "epic", Registration("Epic", SCOPES, jwks=jwks(RSA, EC)))
    await found.register(ORG, "simple", Registration("Simple", SCOPES, secret=SECRET))
    await found.register(
        ORG, "remote", Registration("Remote", SCOPES, jwks_url="https://keys.example/jwks")
    )
    return found


async def token_for(
    authentication: Authentication,
    form: dict[str, str],
    authorization: str | None = None,
    org: uuid.UUID = ORG,
) -> Any:
    return await authentication.token(str(org), form, authorization, TOKEN_URL)


async def test_a_signed_assertion_gets_a_bearer_token_for_the_scopes_asked_for(
    authentication: Authentication,
) -> None:
    assertion = sign(EC, claims("epic", TOKEN_URL))
    granted = await token_for(authentication, assertion_form(assertion, "system/Appointment.rs"))
    assert granted.body() == {
        "access_token": granted.access_token,
        "token_type": "bearer",
        "expires_in": 300,
        "scope": "system/Appointment.rs",
    }
    assert len(granted.access_token) >= 43  # 256 random bits
    caller = await authentication.caller(str(ORG), f"Bearer {granted.access_token}")
    assert (caller.client_id, caller.organization) == ("epic", ORG)
    caller.require("Appointment", "s")
    with pytest.raises(Forbidden):
        caller.require("Patient", "r")  # allowed to the client, not asked for


async def test_an_assertion_is_accepted_once(authentication: Authentication) -> None:
    assertion = sign(RSA, claims("epic", TOKEN_URL))
    await token_for(authentication, assertion_form(assertion, "system/Appointment.rs"))
    with pytest.raises(TokenError, match="used already") as again:
        await token_for(authentication, assertion_form(assertion, "system/Appointment.rs"))
    assert again.value.error == "invalid_client"
    assert again.value.client_id == "epic"


async def test_scopes_beyond_what_the_client_may_ask_for_are_invalid_scope(
    authentication: Authentication,
) -> None:
    for scope in ("system/Appointment.cud", "system/*.rs", "system/Appointment.rs launch", ""):
        assertion = sign(RSA, claims("epic", TOKEN_URL))
        with pytest.raises(TokenError) as caught:
            await token_for(authentication, assertion_form(assertion, scope))
        assert (caught.value.error, caught.value.status) == ("invalid_scope", 400), scope


async def test_a_client_with_a_secret_authenticates_with_basic_or_in_the_form(
    authentication: Authentication,
) -> None:
    basic = "Basic " + base64.b64encode(f"simple:{SECRET}".encode()).decode()
    form = {"grant_type": "client_credentials", "scope": "system/Patient.r"}
    granted = await token_for(authentication, form, basic)
    assert granted.scope == "system/Patient.r"
    posted = {**form, "client_id": "simple", "client_secret": SECRET}
    assert (await token_for(authentication, posted)).client_id == "simple"
    for wrong in (
        {**posted, "client_secret": SECRET + "x"},
        {**posted, "client_id": "nobody"},
        {**posted, "client_id": "epic"},  # registered with keys
    ):
        with pytest.raises(TokenError, match="wrong client id or secret") as caught:
            await token_for(authentication, wrong)
        assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


async def test_a_client_registered_with_a_secret_cannot_use_an_assertion(
    authentication: Authentication,
) -> None:
    assertion = sign(RSA, claims("simple", TOKEN_URL))
    with pytest.raises(TokenError, match="registered with a secret"):
        await token_for(authentication, assertion_form(assertion, "system/Patient.r"))


async def test_a_request_authenticates_its_client_one_way_only(
    authentication: Authentication,
) -> None:
    assertion = sign(RSA, claims("epic", TOKEN_URL))
    form = {**assertion_form(assertion, "system/Patient.r"), "client_secret": SECRET}
    with pytest.raises(TokenError) as caught:
        await token_for(authentication, form)
    assert caught.value.error == "invalid_request"
    with pytest.raises(TokenError) as caught:
        await token_for(authentication, {"grant_type": "client_credentials", "scope": "x"})
    assert caught.value.error == "invalid_client"


async def test_only_the_client_credentials_grant_is_supported(
    authentication: Authentication,
) -> None:
    for grant, error in (
        ("authorization_code", "unsupported_grant_type"),
        (None, "invalid_request"),
    ):
        form = {"scope": "system/Patient.r", "client_id": "simple", "client_secret": SECRET}
        if grant:
            form["grant_type"] = grant
        with pytest.raises(TokenError) as caught:
            await token_for(authentication, form)
        assert (caught.value.error, caught.value.status) == (error, 400)


async def test_a_token_is_refused_once_expired_and_for_another_organisation(
    authentication: Authentication, clock: Clock
) -> None:
    assertion = sign(RSA, claims("epic", TOKEN_URL))
    granted = await token_for(authentication, assertion_form(assertion, "system/Appointment.rs"))
    bearer = f"Bearer {granted.access_token}"
    with pytest.raises(Forbidden, match="another organisation") as other:
        await authentication.caller(str(OTHER_ORG), bearer)
    assert other.value.status == 403
    with pytest.raises(Forbidden):
        await authentication.caller("not-an-organisation", bearer)
    with pytest.raises(Unauthorized, match="unknown or has expired"):
        await authentication.caller(str(ORG), "Bearer " + "x" * 43)
    clock.now += 301
    with pytest.raises(Unauthorized, match="unknown or has expired"):
        await authentication.caller(str(ORG), bearer)


async def test_removing_or_changing_a_client_revokes_its_tokens(
    authentication: Authentication,
) -> None:
    form = {"grant_type": "client_credentials", "scope": "system/Patient.r"}
    posted = {**form, "client_id": "simple", "client_secret": SECRET}
    first = await token_for(authentication, posted)
    await authentication.register(
        ORG, "simple", Registration("Simple", ("system/Patient.r",), secret=SECRET)
    )
    with pytest.raises(Unauthorized):
        await authentication.caller(str(ORG), f"Bearer {first.access_token}")
    second = await token_for(authentication, posted)
    assert await authentication.remove(ORG, "simple")
    with pytest.raises(Unauthorized):
        await authentication.caller(str(ORG), f"Bearer {second.access_token}")
    with pytest.raises(TokenError, match="wrong client id or secret"):
        await token_for(authentication, posted)


async def test_keys_at_a_jwks_url_are_fetched_once_and_again_for_an_unknown_kid(
    authentication: Authentication, fetcher: Fetcher, clock: Clock
) -> None:
    for _ in range(3):
        assertion = sign(RSA, claims("remote", TOKEN_URL))
        await token_for(authentication, assertion_form(assertion, "system/Patient.r"))
    assert fetcher.fetched == 1
    rotated = SigningKey.ec("ec-2")
    fetcher.key_set = jwks(RSA, rotated)
    clock.now += 11
    assertion = sign(rotated, claims("remote", TOKEN_URL, exp=int(clock.now) + 60))
    await token_for(authentication, assertion_form(assertion, "system/Patient.r"))
    assert fetcher.fetched == 2
    unknown = sign(SigningKey.ec("ec-3"), claims("remote", TOKEN_URL, exp=int(clock.now) + 60))
    with pytest.raises(UnknownKeyError):
        await token_for(authentication, assertion_form(unknown, "system/Patient.r"))
    assert fetcher.fetched == 2  # not again within 10 seconds


async def test_with_authentication_off_every_request_is_the_local_dev_client() -> None:
    settings = EmrBridgeSettings(auth_required=False)
    authentication = Authentication(MemoryCredentials(), settings)
    caller = await authentication.caller(str(ORG), None)
    assert (caller.client_id, caller.organization) == ("local-dev", ORG)


def test_a_registered_client_is_unchanged_only_by_the_same_registration() -> None:
    now = dt.datetime.now(dt.UTC)
    client = RegisteredClient(ORG, "simple", "S", SCOPES, None, None, hash_secret(SECRET), now, now)
    same = Registration("S", SCOPES, secret=SECRET)
    assert client.same_as(same)
    assert not client.same_as(dataclasses.replace(same, secret=SECRET + "x"))
    assert not client.same_as(dataclasses.replace(same, name="T"))
    assert not client.same_as(Registration("S", SCOPES, jwks=jwks(RSA)))
