"""Unit tests, run natively: PYTHONPATH=../../sdk/python python3 -m unittest

(The HTTP paths need a component; the Rust end-to-end tests cover them.)"""

import unittest

from baton_sdk import Failure

import app


class MaskTest(unittest.TestCase):
    def test_keeps_the_first_and_last_four(self):
        self.assertEqual(app.mask_iban("DE89370400440532013000"), "DE89 **** **** **** 3000")
        self.assertEqual(app.mask_iban("DE89 3704 0044 0532 0130 00"),
                         "DE89 **** **** **** 3000")

    def test_short_and_missing(self):
        self.assertEqual(app.mask_iban("DE891234"), "****")
        self.assertIsNone(app.mask_iban(None))


class ConfigTest(unittest.TestCase):
    def test_without_the_secret_nothing_is_requested(self):
        with self.assertRaises(Failure) as caught:
            app.connector.run("lookup-vendor", '{"vendor_id": "V-100"}')
        self.assertEqual(caught.exception.code, "not_configured")
        self.assertFalse(caught.exception.retryable)

    def test_describe(self):
        info = app.connector.info()
        self.assertEqual((info["name"], info["version"]), ("vendor-master", "0.1.0"))
        self.assertEqual(info["hosts"], ["*"])
        self.assertEqual(info["secrets"], ["api_key"])
        self.assertEqual([a["name"] for a in info["actions"]],
                         ["lookup-vendor", "search-vendors"])


if __name__ == "__main__":
    unittest.main()
