"""Runs a probe handler under Flask itself, on the requests given as JSON on stdin, and prints
what it answered as JSON: the reference the differential test (tests/serve_flask_request.rs)
holds pubfn's `request` to.

stdin: {"script": "<handler source using the global request>", "requests": [{"method",
"path", "headers": [[name, value]], "body_base64"}]}
stdout: [{"status": int, "json": <the response's JSON, or null>}]"""

import base64
import json
import sys

from flask import Flask, request

spec = json.load(sys.stdin)
namespace = {"request": request}
exec(compile(spec["script"], "handler.py", "exec"), namespace)

app = Flask(__name__)
app.add_url_rule("/probe", "probe", namespace["handler"],
                 methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
answers = []
for req in spec["requests"]:
    # The test client keeps cookies in a jar of its own and ignores a Cookie header.
    client = app.test_client()
    headers = []
    for name, value in req["headers"]:
        if name.lower() != "cookie":
            headers.append((name, value))
            continue
        for item in value.split(";"):
            key, _, cookie = item.strip().partition("=")
            if len(cookie) >= 2 and cookie[0] == cookie[-1] == '"':
                cookie = cookie[1:-1]
            client.set_cookie(key, cookie)
    response = client.open(req["path"], method=req["method"], headers=headers,
                           data=base64.b64decode(req["body_base64"]))
    answers.append({"status": response.status_code, "json": response.get_json(silent=True)})
json.dump(answers, sys.stdout)
