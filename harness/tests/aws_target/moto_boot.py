"""Starts moto_server for the aws target's tests, on a free loopback port, printing its URL.

Three additions to the plain `moto_server`:

* it exits when its stdin closes, so a test process that dies (killed at a timeout) never leaves it behind;
* it accepts the Smithy RPC v2 CBOR protocol, which the AWS SDK for Rust now speaks to CloudWatch and moto
  does not: such a request is translated to the JSON protocol moto implements for the same service, and the
  answer back to CBOR, with timestamps, blobs and numbers typed by the service's own botocore model;
* an unsigned request is routed by its Host header (`monitoring.us-east-1.amazonaws.com`), as AWS routes it;
  the single server would otherwise hand it to S3, and the security checks' unsigned probe of CloudWatch
  would be answered by the wrong service.
"""

import base64
import datetime
import gzip
import io
import json
import os
import re
import sys
import threading

import cbor2
from botocore.loaders import Loader
from botocore.model import ServiceModel
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

# RPC v2 service ids (the path's /service/<id>/) to botocore service names.
CBOR_SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}
_models = {}


def model(service_id):
    name = CBOR_SERVICES[service_id]
    if name not in _models:
        _models[name] = ServiceModel(Loader().load_service_model(name, "service-2"), name)
    return _models[name]


def epoch(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def to_json(value):
    """CBOR-decoded request values to what the JSON protocol carries."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        return epoch(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, cbor2.CBORTag):
        return to_json(value.value)
    return value


def to_cbor(value, shape):
    """JSON response values to RPC v2 CBOR values of `shape`."""
    if value is None or shape is None:
        return value
    t = shape.type_name
    if t == "structure":
        return {k: to_cbor(v, shape.members.get(k)) for k, v in value.items()}
    if t == "list":
        return [to_cbor(v, shape.member) for v in value]
    if t == "map":
        return {k: to_cbor(v, shape.value) for k, v in value.items()}
    if t == "timestamp":
        return cbor2.CBORTag(1, epoch(value))
    if t == "blob":
        return base64.b64decode(value) if isinstance(value, str) else value
    if t in ("double", "float"):
        return float(value)
    if t in ("integer", "long"):
        return int(value)
    return value


class CborToJson:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        parts = environ.get("PATH_INFO", "").split("/")
        if len(parts) != 5 or parts[1] != "service" or parts[3] != "operation" or parts[2] not in CBOR_SERVICES:
            return self.app(environ, start_response)
        service_id, operation = parts[2], parts[4]
        op = model(service_id).operation_model(operation)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ.get("HTTP_CONTENT_ENCODING", "") == "gzip":
            raw = gzip.decompress(raw)
        body = to_json(cbor2.loads(raw)) if raw else {}
        data = json.dumps(body).encode()
        environ = dict(environ)
        environ.pop("HTTP_CONTENT_ENCODING", None)
        environ.update(
            {
                "PATH_INFO": "/",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "HTTP_X_AMZ_TARGET": f"{service_id}.{operation}",
                "CONTENT_LENGTH": str(len(data)),
                "wsgi.input": io.BytesIO(data),
            }
        )
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        out = b"".join(self.app(environ, capture))
        status = captured["status"]
        headers = [(k, v) for k, v in captured["headers"] if k.lower() not in ("content-type", "content-length")]
        try:
            answer = json.loads(out) if out.strip() else {}
        except ValueError:
            text = out.decode(errors="replace")
            code = re.search(r"<Code>([^<]+)</Code>", text)
            message = re.search(r"<Message>([^<]*)</Message>", text)
            answer = {"__type": code.group(1) if code else "InternalFailure", "message": message.group(1) if message else text}
        if status.startswith("2"):
            answer = to_cbor(answer, op.output_shape) if op.output_shape is not None else {}
        else:
            kind = answer.get("__type") or dict(headers).get("x-amzn-query-error", "InternalFailure").split(";")[0]
            answer = {"__type": kind.split("#")[-1], "message": answer.get("message") or answer.get("Message") or ""}
        payload = cbor2.dumps(answer)
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), ("Content-Length", str(len(payload)))]
        start_response(status, headers)
        return [payload]


class HostRouting(DomainDispatcherApplication):
    def infer_service_region_host(self, environ, path):
        host = environ.get("HTTP_HOST", "").split(":")[0]
        if not environ.get("HTTP_AUTHORIZATION") and host.endswith(".amazonaws.com") and self.get_backend_for_host(host):
            return host
        return super().infer_service_region_host(environ, path)


def main():
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    app = HostRouting(create_backend_app)
    run_simple("127.0.0.1", 0, CborToJson(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
