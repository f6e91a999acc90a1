"""A receiver that only counts the requests it is sent, in a process of its own (`python
counting_sink.py PORT`), so a test's 20,000 deliveries do not load the test's own event loop."""

import sys

from aiohttp import web

received = 0


async def hook(_: web.Request) -> web.Response:
    global received
    received += 1
    return web.Response(text="ok")


async def count(_: web.Request) -> web.Response:
    return web.json_response({"received": received})


if __name__ == "__main__":
    app = web.Application()
    app.add_routes([web.post("/hook", hook), web.get("/count", count)])
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
