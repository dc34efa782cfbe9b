"""Verifies webhook deliveries with the Standard Webhooks reference library (PyPI
`standardwebhooks`), independently of pactum's own signing code.

Reads JSON from stdin: {"secrets": ["whsec_..."], "requests": [{"id", "timestamp",
"signature", "body"}]}. Every request must verify (signature and timestamp tolerance) with at
least one of the secrets. Prints how many verified; exits 1 naming the first that does not.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    given = json.load(sys.stdin)
    hooks = [Webhook(secret) for secret in given["secrets"]]
    verified = 0
    for request in given["requests"]:
        headers = {
            "webhook-id": request["id"],
            "webhook-timestamp": request["timestamp"],
            "webhook-signature": request["signature"],
        }
        errors = []
        for hook in hooks:
            try:
                hook.verify(request["body"].encode(), headers)
                break
            except WebhookVerificationError as e:
                errors.append(str(e))
        else:
            print(f"{request['id']} does not verify: {errors}", file=sys.stderr)
            return 1
        verified += 1
    print(verified)
    return 0


if __name__ == "__main__":
    sys.exit(main())
