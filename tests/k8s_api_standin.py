#!/usr/bin/env python3
"""k8s_api_standin.py - a stand-in for the Kubernetes API server, for
tests/test_podcost.sh only: HTTPS on 127.0.0.1 with the given certificate,
answers every PATCH with 200 and a pod-shaped JSON object, and appends one
JSON line per request (method, path, headers that matter, body) to a log.
It checks nothing itself; the test reads the log.  It is not a model of the
real server's validation, admission or RBAC.

Usage: k8s_api_standin.py CERT KEY PORT_FILE LOG
"""
import http.server
import json
import os
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def _record(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        rec = {"method": self.command, "path": self.path,
               "authorization": self.headers.get("Authorization", ""),
               "content_type": self.headers.get("Content-Type", ""),
               "body": body}
        with open(self.server.log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return body

    def _reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PATCH(self):
        body = self._record()
        try:
            patch = json.loads(body)
        except ValueError:
            self._reply(400, {"kind": "Status", "message": "bad JSON"})
            return
        self._reply(200, {"kind": "Pod", "apiVersion": "v1", "metadata": patch.get("metadata", {})})

    def do_GET(self):
        self._record()
        self._reply(404, {"kind": "Status", "message": "not served by the stand-in"})

    def log_message(self, fmt, *args):
        pass


def main():
    cert, key, port_file, log_path = sys.argv[1:5]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.log_path = log_path
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
