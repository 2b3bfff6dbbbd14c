"""A tiny WSGI application for the probe tests, served by gunicorn on a unix socket.

``GET /status/N`` answers with HTTP status N; any other path answers 200.
"""


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 200
    body = f"status {status}\n".encode()
    start_response(f"{status} WHATEVER", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
