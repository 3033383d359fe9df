"""The age-gauge set follows SpectatorD's own (docs/protocol.md 12.4): the
relay reads GET /config and GET /metrics from SpectatorD's admin server, so
SpectatorD's limit, its other writers' age gauges, a restart that empties
its set, and an admin DELETE all count without anyone telling the relay."""

import http.server
import json
import os
import socket
import threading
import unittest

from relaytest import RelayTestCase, wait_until


class FakeAdmin:
    """SpectatorD's admin server, as far as the relay reads it."""

    def __init__(self, limit, ids):
        self.limit = limit
        self.ids = list(ids)  # (name, {tags})
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append(self.path)
                if self.path == "/config":
                    body = {"age_gauge_limit": fake.limit, "status_metrics_enabled": True}
                elif self.path == "/metrics":
                    body = {"counters": [{"name": "c", "tags": {}, "value": "1"}] * 3,
                            "age_gauges": [{"name": n, "tags": t, "value": "12.5"}
                                           for n, t in fake.ids],
                            "stats": {"age_gauges.size": len(fake.ids)}}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ResyncTest(RelayTestCase):

    def admin_fake(self, limit, ids):
        f = FakeAdmin(limit, ids)
        self._owned.append(f.close)
        return f

    def resyncs(self, relay):
        return relay.admin("stats")["spectatord"]["resyncs"]

    def test_spectatord_limit_and_other_writers_count(self):
        spectatord = self.admin_fake(5, [("spectatord.uptime", {}),
                                         ("other.writer", {"zone": "b", "app": "x y"})])
        up = self.fake("unix")
        relay = self.relay(up, config={"spectatord": {"admin": spectatord.url,
                                                      "resync_interval": "1s"}})
        wait_until(lambda: self.resyncs(relay) >= 1, message="a resync")
        ids = relay.admin("age-gauges")
        self.assertEqual(ids["limit"], 5)
        self.assertEqual(sorted(ids["ids"]), ["other.writer,app=x_y,zone=b", "spectatord.uptime"])
        relay.send_udp("A:mine.1:0\nA:mine.2:0\nA:mine.3:0\nA:mine.4:0")
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == 4 else None)(
            relay.admin("stats")), message="lines read")
        # 5 slots, 2 taken by SpectatorD's own and another writer's: 3 left.
        self.assertEqual(stats["rejected"]["by_reason"]["age-gauge-limit"], 1)
        self.assertEqual(stats["spectatord"]["age_gauge_limit"], 5)
        self.assertEqual(stats["series"]["age_gauge_limit"], 5)
        self.assertExit0(relay)

    def test_a_spectatord_restart_frees_the_slots(self):
        spectatord = self.admin_fake(3, [("spectatord.uptime", {})])
        up = self.fake("unix")
        relay = self.relay(up, config={"spectatord": {"admin": spectatord.url,
                                                      "resync_interval": "1s"}})
        wait_until(lambda: self.resyncs(relay) >= 1, message="a resync")
        relay.send_udp("A:x.1:0\nA:x.2:0\nA:x.3:0")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 3, message="read")
        self.assertEqual(relay.admin("stats")["rejected"]["by_reason"]["age-gauge-limit"], 1)
        # SpectatorD took both ids (they reached it), then restarted and
        # holds only its uptime gauge again.
        spectatord.ids = [("spectatord.uptime", {})]
        done = self.resyncs(relay)
        wait_until(lambda: self.resyncs(relay) >= done + 2, message="resyncs after the restart")
        self.assertEqual(relay.admin("age-gauges")["ids"], ["spectatord.uptime"])
        relay.send_udp("A:x.3:0")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 4, message="read")
        self.assertEqual(relay.admin("stats")["rejected"]["by_reason"]["age-gauge-limit"], 1)
        self.assertExit0(relay)

    def test_spectatord_has_the_last_word(self):
        """An id SpectatorD does not hold, at a resync that began windows
        after the relay last forwarded it, has lost its slot (an admin
        DELETE, or a line that never arrived)."""
        spectatord = self.admin_fake(2, [])
        relay = self.relay(self.fake("unix"),
                           config={"spectatord": {"admin": spectatord.url,
                                                  "resync_interval": "1s"}})
        wait_until(lambda: self.resyncs(relay) >= 1, message="a resync")
        relay.send_udp("A:deleted:0")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 1, message="read")
        self.assertEqual(relay.admin("age-gauges")["ids"], ["deleted"])
        done = self.resyncs(relay)
        wait_until(lambda: self.resyncs(relay) >= done + 2, message="two more resyncs")
        self.assertEqual(relay.admin("age-gauges")["ids"], [])
        self.assertExit0(relay)

    def test_unreachable_spectatord_keeps_the_set(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            dead = "http://127.0.0.1:%d" % s.getsockname()[1]  # bound, never listening
            relay = self.relay(self.fake("unix"),
                               config={"spectatord": {"admin": dead, "resync_interval": "1s"},
                                       "limits": {"age_gauge_limit": "2"}})
            relay.send_udp("A:kept:0")
            stats = wait_until(lambda: (lambda st: st if st["spectatord"]["resync_failures"] >= 2
                                        else None)(relay.admin("stats")), message="failures")
        self.assertIn("refused", stats["spectatord"]["last_error"])
        self.assertEqual(relay.admin("age-gauges")["ids"], ["kept"])
        self.assertEqual(relay.log().count("event=age_gauge_resync_failed"), 1)
        self.assertExit0(relay)

    def test_not_an_http_server(self):
        s, relay = self.raw_admin()
        with s:
            self.serve_once(s, b"garbage, not HTTP\r\n\r\n{}").close()
            stats = wait_until(lambda: (lambda st: st if st["spectatord"]["resync_failures"] >= 1
                                        else None)(relay.admin("stats")), message="a failure")
        self.assertIn("not an HTTP response", stats["spectatord"]["last_error"])
        self.assertExit0(relay)

    def test_ids_on_their_way_keep_their_slot(self):
        """SpectatorD has not seen x yet (it is in the open window, or in
        SpectatorD's queue) when it answers: x keeps its slot, so once new
        ids fill the set a later update to x still passes, and the id
        refused is the new one that found no slot."""
        spectatord = self.admin_fake(3, [("spectatord.uptime", {})])
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "2s"},
                                       "spectatord": {"admin": spectatord.url,
                                                      "resync_interval": "1s"}})
        relay.send_udp("A:x:0")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 1, message="read")
        done = self.resyncs(relay)
        wait_until(lambda: self.resyncs(relay) >= done + 1, message="a resync after x")
        self.assertEqual(sorted(relay.admin("age-gauges")["ids"]), ["spectatord.uptime", "x"])
        relay.send_udp("A:y:0\nA:z:0\nA:x:100")
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == 4 else None)(
            relay.admin("stats")), message="read")
        self.assertEqual(stats["rejected"]["by_reason"]["age-gauge-limit"], 1)
        self.assertTrue(relay.admin("flush")["delivered"])
        self.assertExit0(relay)
        self.assertEqual(sorted(up.last("A")), ["x", "y"])
        self.assertEqual(up.last("A")["x"][0], "100")

    def test_long_ids_spectatord_holds_count_once(self):
        long_name = "long." + "a" * 5000
        spectatord = self.admin_fake(3, [("spectatord.uptime", {}), (long_name, {"k": "v"}),
                                         ("other", {})])
        up = self.fake("unix")
        relay = self.relay(up, config={"spectatord": {"admin": spectatord.url,
                                                      "resync_interval": "1s"}})
        wait_until(lambda: self.resyncs(relay) >= 1, message="a resync")
        relay.send_udp("A:%s,k=v:0" % long_name)
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == 1 else None)(
            relay.admin("stats")), message="read")
        self.assertEqual(stats["rejected"]["total"], 0)
        self.assertEqual(stats["series"]["age_gauges"], 3)
        self.assertExit0(relay)
        self.assertEqual(list(up.last("A")), [long_name + ",k=v"])

    def test_spectatord_limit_replaces_the_configured_one(self):
        """The set holds SpectatorD's own and other writers' ids: its limit
        is the one to compare with, whatever [limits] age_gauge_limit says."""
        spectatord = self.admin_fake(3, [("spectatord.uptime", {})])
        relay = self.relay(self.fake("unix"),
                           config={"limits": {"age_gauge_limit": "2"},
                                   "spectatord": {"admin": spectatord.url,
                                                  "resync_interval": "1s"}})
        wait_until(lambda: self.resyncs(relay) >= 1, message="a resync")
        relay.send_udp("A:a:0\nA:b:0\nA:c:0")
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == 3 else None)(
            relay.admin("stats")), message="read")
        self.assertEqual(stats["series"]["age_gauge_limit"], 3)
        self.assertEqual(stats["rejected"]["by_reason"]["age-gauge-limit"], 1)  # c only
        self.assertExit0(relay)

    def raw_admin(self, interval="1s"):
        """A bare TCP listener as SpectatorD's admin server, for answers no
        HTTP server would give, and a relay that reads it. The caller
        closes the listener."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        relay = self.relay(self.fake("unix"),
                           config={"spectatord": {"admin": url, "resync_interval": interval}})
        return s, relay

    def serve_once(self, listener, reply):
        """Accepts one request on listener and answers it with reply."""
        conn, _ = listener.accept()
        conn.settimeout(10)
        conn.recv(1000)
        conn.sendall(reply)
        return conn

    def test_a_bad_escape_is_refused_not_overrun(self):
        s, relay = self.raw_admin()
        with s:
            body = b'{"age_gauge_limit": 10, "x": "\\u"' + b"A" * 200 + b'"}'
            self.serve_once(s, b"HTTP/1.0 200 OK\r\n\r\n" + body).close()
            stats = wait_until(lambda: (lambda st: st if st["spectatord"]["resync_failures"] >= 1
                                        else None)(relay.admin("stats")), message="a failure")
        self.assertIn("unexpected content", stats["spectatord"]["last_error"])
        self.assertEqual(stats["spectatord"]["age_gauge_limit"], 0)
        self.assertExit0(relay)

    def test_metrics_read_only_as_far_as_the_age_gauges(self):
        """SpectatorD writes age_gauges first; the rest of a big /metrics
        need not be read, or even finish."""
        s, relay = self.raw_admin(interval="10m")
        with s:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
            self.serve_once(s, head + b'{"age_gauge_limit": 7}').close()
            body = (b'{"age_gauges": [{"name": "held", "tags": {"a": "b"}, "value": "3"}], '
                    b'"counters": [' + b'{"name": "c", "tags": {}, "value": "1"}, ' * 1000)
            conn = self.serve_once(s, head + body)  # and never the end
            try:
                wait_until(lambda: self.resyncs(relay) == 1, message="a resync")
                self.assertEqual(relay.admin("age-gauges")["ids"], ["held,a=b"])
                self.assertEqual(relay.admin("stats")["spectatord"]["age_gauge_limit"], 7)
            finally:
                conn.close()
        self.assertExit0(relay)

    def test_upstream_back_resyncs_at_once(self):
        """An upstream outage is often a SpectatorD restart, which empties
        its set: the relay asks again as soon as it delivers again."""
        spectatord = self.admin_fake(5, [("spectatord.uptime", {})])
        path = os.path.join(self.tmp, "spectatord.unix")
        relay = self.relay("unix://" + path,
                           config={"spectatord": {"admin": spectatord.url,
                                                  "resync_interval": "10m"}})
        wait_until(lambda: self.resyncs(relay) == 1, message="the first resync")
        relay.send_udp("c:early:1")
        wait_until(lambda: "event=upstream_down" in relay.log(), message="upstream down")
        self.assertEqual(self.resyncs(relay), 1)
        up = self.fake("unix")
        wait_until(lambda: up.count() >= 1, message="delivery after the upstream appeared")
        wait_until(lambda: self.resyncs(relay) == 2, message="a resync on recovery")
        self.assertExit0(relay)


if __name__ == "__main__":
    unittest.main()
