import base64

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks import signing


def test_it_reproduces_the_standard_webhooks_test_vector_exactly():
    assert signing.sign(
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330, body=b'{"test": 2432232314}',
    ) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_rotation_header_carries_one_signature_per_secret():
    old, new = signing.secret_generate(), signing.secret_generate()
    header = signing.signature_header(secrets_=[new, old], msg_id="whd_1", timestamp=1, body=b"{}")
    assert header.split(" ") == [
        signing.sign(secret=new, msg_id="whd_1", timestamp=1, body=b"{}"),
        signing.sign(secret=old, msg_id="whd_1", timestamp=1, body=b"{}"),
    ]


@pytest.mark.parametrize("nbytes", [24, 32, 64])
def test_generated_secrets_are_whsec_and_usable_by_the_reference_library(nbytes):
    secret = signing.secret_generate(nbytes)
    assert secret.startswith("whsec_")
    assert len(signing.secret_key(secret)) == nbytes
    Webhook(secret)  # parses
    assert signing.secret_generate() != signing.secret_generate()


@pytest.mark.parametrize("secret,message", [
    ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with whsec_"),
    ("whsec_not base64!", "standard base64"),
    ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24 to 64 bytes (got 23)"),
    ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes (got 65)"),
])
def test_bad_secrets_are_refused_with_a_reason(secret, message):
    with pytest.raises(signing.InvalidSecret, match=message.replace("(", r"\(").replace(")", r"\)")):
        signing.secret_key(secret)
