"""Native unit tests of the SDK: cd sdk/python && python3 -m unittest discover tests"""

import json
import unittest

from baton_sdk import Call, Connector, Failure, config, feedback, http


def make():
    c = Connector(name="t", version="0.1.0", description="test", hosts=["a.example"],
                  secrets=["k"])

    @c.action("echo", "Echo", input={"type": "object"}, output={"type": "object"})
    def echo(input, call):
        return {"input": input, "key": call.idempotency_key}

    @c.action
    def fail_typed(input, call):
        """Fails with a typed failure"""
        raise Failure("nope", "typed", retryable=True, details={"a": 1})

    @c.action
    def crash(input, call):
        return {}["missing"]

    @c.action
    def bad_output(input, call):
        return {"x": object()}

    return c


class ConnectorTest(unittest.TestCase):
    def test_info(self):
        info = make().info()
        self.assertEqual(info["name"], "t")
        self.assertEqual([a["name"] for a in info["actions"]],
                         ["echo", "fail-typed", "crash", "bad-output"])
        self.assertEqual(info["actions"][1]["description"], "Fails with a typed failure")
        self.assertEqual(info["hosts"], ["a.example"])

    def test_run_parses_and_serialises(self):
        out = make().run("echo", '{"a": [1, "é"]}', Call(idempotency_key="k1"))
        self.assertEqual(json.loads(out), {"input": {"a": [1, "é"]}, "key": "k1"})

    def test_failures(self):
        c = make()
        cases = [
            ("nosuch", "{}", "unknown_action", False),
            ("echo", "{not json", "invalid_input", False),
            ("fail-typed", "{}", "nope", True),
            ("crash", "{}", "plugin_error", False),
            ("bad-output", "{}", "invalid_output", False),
        ]
        for action, input, code, retryable in cases:
            with self.assertRaises(Failure, msg=action) as caught:
                c.run(action, input)
            self.assertEqual((caught.exception.code, caught.exception.retryable),
                             (code, retryable), action)
        with self.assertRaises(Failure) as caught:
            c.run("crash", "{}")
        self.assertIn("KeyError: 'missing'", caught.exception.message)
        self.assertEqual(caught.exception.details["exception"], "KeyError")

    def test_registering_twice_is_an_error(self):
        c = make()
        with self.assertRaises(ValueError):
            c.action("echo")(lambda i, c: {})


class OutsideAComponentTest(unittest.TestCase):
    def test_helpers_degrade(self):
        self.assertIsNone(config.get("x"))
        self.assertEqual(config.get("x", 5), 5)
        self.assertIsNone(config.secret("k"))
        self.assertEqual(feedback.corrections("a", 3), [])
        with self.assertRaises(Failure) as caught:
            config.require_secret("k")
        self.assertEqual(caught.exception.code, "secret_not_granted")
        with self.assertRaises(Failure) as caught:
            config.require_str("base_url")
        self.assertEqual(caught.exception.code, "invalid_config")
        with self.assertRaises(http.HttpError) as caught:
            http.get("https://a.example/x")
        self.assertEqual((caught.exception.code, caught.exception.retryable),
                         ("unreachable", True))

    def test_bad_urls(self):
        for url in ("a.example/x", "https:///x", "https://u:p@a.example/"):
            with self.assertRaises(http.HttpError, msg=url) as caught:
                http.get(url)
            self.assertEqual(caught.exception.code, "invalid_request", url)


def response(status, body):
    return http.Response(status, [("content-type", "application/json")], body.encode())


class ResponseTest(unittest.TestCase):
    def test_json(self):
        self.assertEqual(response(200, '{"a": 1}').json(), {"a": 1})
        with self.assertRaises(http.HttpError) as caught:
            response(200, "<html>").json()
        self.assertEqual(caught.exception.code, "invalid_response")

    def test_header(self):
        self.assertEqual(response(200, "").header("Content-Type"), "application/json")
        self.assertIsNone(response(200, "").header("x"))

    def test_error_messages(self):
        msg = lambda body: response(500, body).error_message()  # noqa: E731
        self.assertEqual(msg('{"error": "down"}'), "down")
        self.assertEqual(msg('{"error": {"message": "slow down"}}'), "slow down")
        self.assertEqual(msg('{"message": "nope"}'), "nope")
        self.assertEqual(msg('{"detail": "bad"}'), "bad")
        self.assertEqual(msg("  <h1>Bad gateway</h1>\n"), "<h1>Bad gateway</h1>")
        self.assertEqual(len(msg("é" * 600)), 501)

    def test_statuses_become_failures(self):
        for status, code, retryable in [
            (401, "unauthorized", False), (403, "unauthorized", False),
            (404, "not_found", False), (408, "upstream_unavailable", True),
            (429, "upstream_unavailable", True), (503, "upstream_unavailable", True),
            (400, "upstream_error", False),
        ]:
            f = response(status, '{"message": "m"}').failure("svc")
            self.assertEqual((f.code, f.retryable), (code, retryable), status)
            self.assertTrue(f.message.startswith(f"svc answered {status}: m"))
            self.assertEqual(f.details, {"status": status, "error": "m"})

    def test_endpoint(self):
        self.assertEqual(http.endpoint("http://x/api/", "/v"), "http://x/api/v")
        self.assertEqual(http.endpoint("http://x/api", "v"), "http://x/api/v")


if __name__ == "__main__":
    unittest.main()
