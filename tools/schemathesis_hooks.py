"""schemathesis hooks for pactum (loaded through tools/schemathesis.toml).

An Idempotency-Key names one request of one principal: the API refuses the same key for a
different request (422 `idempotency_key_reused`), and schemathesis would otherwise reuse its
few boundary values across operations. Every *valid* key it generates is made unique; malformed
and missing keys are sent as generated, so that their refusals are still tested.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str):
            if VALID_KEY.match(headers[name]):
                headers[name] = f"st-{uuid.uuid4()}"
