"""Microsoft's own Python client libraries, unmodified, against the emulator.

Run by tests/azure_sdk.rs (which installs requirements.txt into a virtual
environment, starts `acgbulk emulator` over TLS and sets the environment
below). Every check prints one line; the first failure raises, so the exit
status says whether all held.

Environment:
  EMULATOR_ENDPOINT        https://127.0.0.1:PORT (no trailing slash)
  EMULATOR_TENANT          the tenant id to ask tokens of
  EMULATOR_ACCESS_KEY      the ACS access key (base64) the emulator accepts
  SECRET_CLIENT_ID, SECRET_CLIENT_SECRET
                           a client registered with --client
  CERT_CLIENT_ID, CERT_KEY_AND_CERT_PEM, CERT_KEY_PEM, CERT_PEM
                           a client registered with --client-certificate,
                           its private key and certificate
  PROVISIONING_SCOPE       the Provisioning API's scope (.../.default)
  IDENTITY_ENDPOINT, IDENTITY_HEADER
                           the App Service managed identity (as Azure sets them)
  REQUESTS_CA_BUNDLE, SSL_CERT_FILE
                           the emulator's CA certificate
"""

import base64
import json
import os
import sys
import time

import msal
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.communication.phonenumbers import (
    PhoneNumberAssignmentType,
    PhoneNumberCapabilities,
    PhoneNumberCapabilityType,
    PhoneNumbersClient,
    PhoneNumberType,
)
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)
from msal.oauth2cli.assertion import JwtAssertionCreator

ENDPOINT = os.environ["EMULATOR_ENDPOINT"].rstrip("/")
TENANT = os.environ["EMULATOR_TENANT"]
ACCESS_KEY = os.environ["EMULATOR_ACCESS_KEY"]
PROVISIONING_SCOPE = os.environ["PROVISIONING_SCOPE"]
ACS_SCOPE = "https://communication.azure.com/.default"
CA = os.environ["REQUESTS_CA_BUNDLE"]
# Polls answer Retry-After: 1, which the SDK honours over this interval.
FAST = {"polling_interval": 0.2}


def ok(what):
    print(f"ok: {what}", flush=True)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def connection_string(key):
    return f"endpoint={ENDPOINT}/;accesskey={key}"


def toll_free_search(client):
    poller = client.begin_search_available_phone_numbers(
        "US",
        PhoneNumberType.TOLL_FREE,
        PhoneNumberAssignmentType.APPLICATION,
        PhoneNumberCapabilities(
            calling=PhoneNumberCapabilityType.NONE,
            sms=PhoneNumberCapabilityType.INBOUND_OUTBOUND,
        ),
        **FAST,
    )
    result = poller.result()
    check(len(result.phone_numbers) == 1, f"one toll-free number: {result.phone_numbers}")
    check(result.phone_numbers[0].startswith("+1800"), f"a +1800 number: {result.phone_numbers}")
    check(result.phone_number_type == "tollFree", f"type: {result.phone_number_type}")
    check(result.cost.currency_code == "USD", f"cost: {result.cost}")
    check(result.search_expires_by is not None, "searchExpiresBy is read")
    return result


def geographic_search(client, area_code, quantity):
    poller = client.begin_search_available_phone_numbers(
        "US",
        PhoneNumberType.GEOGRAPHIC,
        PhoneNumberAssignmentType.PERSON,
        PhoneNumberCapabilities(
            calling=PhoneNumberCapabilityType.INBOUND_OUTBOUND,
            sms=PhoneNumberCapabilityType.NONE,
        ),
        area_code=area_code,
        quantity=quantity,
        **FAST,
    )
    result = poller.result()
    check(len(result.phone_numbers) == quantity, f"{quantity} numbers: {result.phone_numbers}")
    check(
        all(n.startswith("+1" + area_code) for n in result.phone_numbers),
        f"all in area code {area_code}: {result.phone_numbers}",
    )
    return result


def acs_with_access_key():
    for version in [None, "2022-12-01"]:
        options = {} if version is None else {"api_version": version}
        client = PhoneNumbersClient.from_connection_string(
            connection_string(ACCESS_KEY), **options
        )
        label = f"api-version {version or 'default (' + client._api_version + ')'}"
        result = toll_free_search(client)
        ok(f"access key, {label}: toll-free search found {result.phone_numbers}")
        result = geographic_search(client, "425", 2)
        ok(f"access key, {label}: geographic search in 425 found {result.phone_numbers}")
        poller = client.begin_purchase_phone_numbers(result.search_id, **FAST)
        poller.result()
        check(poller.status() == "succeeded", f"purchase status {poller.status()}")
        ok(f"access key, {label}: purchase of search {result.search_id} succeeded")


def acs_wrong_key():
    wrong = base64.b64encode(b"not the emulator's key, 32 bytes").decode()
    client = PhoneNumbersClient.from_connection_string(connection_string(wrong))
    try:
        toll_free_search(client)
    except HttpResponseError as error:
        check(error.status_code == 401, f"a wrong key gets 401, not {error.status_code}")
        ok("a wrong access key gets 401")
        return
    raise AssertionError("a search signed with a wrong key succeeded")


def acs_with_entra(credential):
    client = PhoneNumbersClient(ENDPOINT, credential)
    result = toll_free_search(client)
    ok(f"Entra token: toll-free search found {result.phone_numbers}")
    result = geographic_search(client, "206", 1)
    poller = client.begin_purchase_phone_numbers(result.search_id, **FAST)
    poller.result()
    check(poller.status() == "succeeded", f"purchase status {poller.status()}")
    ok(f"Entra token: geographic search in 206 and purchase of {result.phone_numbers}")


def provisioning_api_accepts(token, what):
    response = requests.get(
        f"{ENDPOINT}/accounts?api-version=2024-02-29",
        headers={"Authorization": f"Bearer {token}"},
        verify=CA,
        timeout=30,
    )
    check(response.status_code == 200, f"{what}: GET /accounts gave {response.status_code} {response.text}")
    accounts = response.json()["value"]
    check(isinstance(accounts, list), f"{what}: a list of accounts")
    ok(f"{what}: its token reads the Provisioning API ({len(accounts)} accounts)")


def jwt_header(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def client_secret():
    credential = ClientSecretCredential(
        TENANT,
        os.environ["SECRET_CLIENT_ID"],
        os.environ["SECRET_CLIENT_SECRET"],
        authority=ENDPOINT,
        disable_instance_discovery=True,
    )
    token = credential.get_token(PROVISIONING_SCOPE)
    check(token.expires_on > time.time(), "the token expires in the future")
    ok("ClientSecretCredential got a token through the OpenID configuration")
    provisioning_api_accepts(token.token, "ClientSecretCredential")
    return credential


def certificate_rs256():
    for chain in [False, True]:
        credential = CertificateCredential(
            TENANT,
            os.environ["CERT_CLIENT_ID"],
            certificate_path=os.environ["CERT_KEY_AND_CERT_PEM"],
            send_certificate_chain=chain,
            authority=ENDPOINT,
            disable_instance_discovery=True,
        )
        token = credential.get_token(PROVISIONING_SCOPE)
        ok(f"CertificateCredential (RS256, x5t, send_certificate_chain={chain}) got a token")
        provisioning_api_accepts(token.token, f"CertificateCredential (chain={chain})")


def certificate_ps256():
    # azure-identity always sends a SHA-1 thumbprint (RS256); MSAL, given
    # the public certificate, signs with PS256 and an x5t#S256 thumbprint.
    with open(os.environ["CERT_KEY_PEM"]) as f:
        key = f.read()
    with open(os.environ["CERT_PEM"]) as f:
        cert = f.read()
    authority = f"{ENDPOINT}/{TENANT}"
    app = msal.ConfidentialClientApplication(
        os.environ["CERT_CLIENT_ID"],
        authority=authority,
        client_credential={"private_key": key, "public_certificate": cert},
        instance_discovery=False,
        verify=CA,
    )
    result = app.acquire_token_for_client(scopes=[PROVISIONING_SCOPE])
    check("access_token" in result, f"MSAL with the certificate: {result}")
    ok("MSAL ConfidentialClientApplication (public_certificate: PS256) got a token")
    provisioning_api_accepts(result["access_token"], "MSAL PS256")

    # The same, with the assertion made explicitly, to show what is sent.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    thumbprint = x509.load_pem_x509_certificate(cert.encode()).fingerprint(hashes.SHA256()).hex()
    token_endpoint = requests.get(
        f"{authority}/v2.0/.well-known/openid-configuration", verify=CA, timeout=30
    ).json()["token_endpoint"]
    assertion = JwtAssertionCreator(
        key, algorithm="PS256", sha256_thumbprint=thumbprint
    ).create_normal_assertion(audience=token_endpoint, issuer=os.environ["CERT_CLIENT_ID"])
    assertion = assertion.decode() if isinstance(assertion, bytes) else assertion
    header = jwt_header(assertion)
    check(header.get("alg") == "PS256" and "x5t#S256" in header, f"assertion header {header}")
    app = msal.ConfidentialClientApplication(
        os.environ["CERT_CLIENT_ID"],
        authority=authority,
        client_credential={"client_assertion": assertion},
        instance_discovery=False,
        verify=CA,
    )
    result = app.acquire_token_for_client(scopes=[PROVISIONING_SCOPE])
    check("access_token" in result, f"PS256 assertion: {result}")
    ok(f"a PS256 assertion with x5t#S256 ({header['x5t#S256'][:12]}...) got a token")

    # A PS256 assertion with another certificate's thumbprint is refused.
    forged = JwtAssertionCreator(
        key, algorithm="PS256", sha256_thumbprint="00" * 32
    ).create_normal_assertion(audience=token_endpoint, issuer=os.environ["CERT_CLIENT_ID"])
    forged = forged.decode() if isinstance(forged, bytes) else forged
    app = msal.ConfidentialClientApplication(
        os.environ["CERT_CLIENT_ID"],
        authority=authority,
        client_credential={"client_assertion": forged},
        instance_discovery=False,
        verify=CA,
    )
    result = app.acquire_token_for_client(scopes=[PROVISIONING_SCOPE])
    check(result.get("error") == "invalid_client", f"a wrong thumbprint is refused: {result}")
    ok("a PS256 assertion with the wrong x5t#S256 is refused (invalid_client)")


def managed_identity():
    credential = ManagedIdentityCredential()
    token = credential.get_token(PROVISIONING_SCOPE)
    ok("ManagedIdentityCredential (App Service) got a token")
    provisioning_api_accepts(token.token, "ManagedIdentityCredential")


def main():
    started = time.time()
    acs_with_access_key()
    acs_wrong_key()
    credential = client_secret()
    acs_with_entra(credential)
    certificate_rs256()
    certificate_ps256()
    managed_identity()
    print(f"all checks passed in {time.time() - started:.1f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - report any failure plainly
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        raise
