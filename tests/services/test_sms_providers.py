"""The SMS adapters against local fakes whose signature checks are their own implementations,
pinned to the providers' documented examples."""
from __future__ import annotations

import asyncio
import hashlib

import pytest

from services.sms.providers import AliyunSms, TencentSms, e164
from tests.fake_sms import FakeAliyunSms, FakeTencentSms, aliyun_expected_signature, tencent_expected_signature


def test_the_aliyun_fake_signs_the_documented_example():
    # Alibaba Cloud "signature mechanism" (RPC), the DescribeRegions example: AccessKeySecret
    # "testsecret" gives "OLeaidS1JvxuMvnyHOwuJ+uX5qY=".
    query = {"Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions",
             "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
             "Version": "2014-05-26", "SignatureVersion": "1.0"}
    assert aliyun_expected_signature("GET", query, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_the_tencent_fake_signs_the_documented_example():
    # Tencent Cloud "signature v3", the CVM DescribeInstances example (2019-02-25, timestamp 1551113065).
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    assert hashlib.sha256(payload).hexdigest() == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    hashed, date, signature = tencent_expected_signature(
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", method="POST", host="cvm.tencentcloudapi.com",
        content_type="application/json; charset=utf-8", payload=payload, timestamp=1551113065, service="cvm")
    assert hashed == "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    assert date == "2019-02-25"
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_e164():
    assert e164("13800138000") == "+8613800138000"
    assert e164("+86 138 0013 8000") == "+8613800138000"
    assert e164("008613800138000") == "+8613800138000"


def _send(provider, **kw):
    async def go():
        try:
            return await provider.send(phone="13800138000", sign_name="浦锦平安办", template_code="SMS_1",
                                       template="patrol_notice", params={"title": "今晚加强巡逻", "link": "https://x/i/1"},
                                       order=["title", "link"], reference="outbox-1", **kw)
        finally:
            await provider.close()
    return asyncio.run(go())


@pytest.fixture
def aliyun():
    fake = FakeAliyunSms().start()
    yield fake
    fake.stop()


@pytest.fixture
def tencent():
    fake = FakeTencentSms().start()
    yield fake
    fake.stop()


def test_aliyun_adapter_is_accepted_by_the_fake(aliyun):
    result = _send(AliyunSms(access_key_id=aliyun.access_key_id, access_key_secret=aliyun.access_key_secret,
                             base_url=aliyun.base_url))
    assert result.ok and result.external_id == "biz0"
    sms = aliyun.delivered()[0]
    assert sms.phone == "13800138000" and sms.params == {"title": "今晚加强巡逻", "link": "https://x/i/1"}


def test_aliyun_wrong_secret_is_refused_and_retried_later(aliyun):
    result = _send(AliyunSms(access_key_id=aliyun.access_key_id, access_key_secret="wrong", base_url=aliyun.base_url))
    assert not result.ok and result.retry and result.code == "SignatureDoesNotMatch"
    assert aliyun.calls[0].outcome == "bad-signature"


@pytest.mark.parametrize("code,retry", [("isv.MOBILE_NUMBER_ILLEGAL", False), ("isv.BUSINESS_LIMIT_CONTROL", True),
                                        ("isv.AMOUNT_NOT_ENOUGH", True), ("isv.DAY_LIMIT_CONTROL", False)])
def test_aliyun_refusal_codes(aliyun, code, retry):
    aliyun.fault = lambda phone, i: code
    result = _send(AliyunSms(access_key_id=aliyun.access_key_id, access_key_secret=aliyun.access_key_secret,
                             base_url=aliyun.base_url))
    assert not result.ok and result.retry is retry


def test_tencent_adapter_is_accepted_by_the_fake(tencent):
    result = _send(TencentSms(secret_id=tencent.secret_id, secret_key=tencent.secret_key, sdk_app_id="1400000000",
                              base_url=tencent.base_url))
    assert result.ok and result.external_id == "sn0" and result.segments == 1
    sms = tencent.delivered()[0]
    assert sms.phone == "+8613800138000" and sms.params == ["今晚加强巡逻", "https://x/i/1"]


def test_tencent_wrong_secret_is_refused(tencent):
    result = _send(TencentSms(secret_id=tencent.secret_id, secret_key="wrong", sdk_app_id="1", base_url=tencent.base_url))
    assert not result.ok and result.retry and result.code == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("code,retry", [("InvalidParameterValue.IncorrectPhoneNumber", False),
                                        ("LimitExceeded.PhoneNumberThirtySecondLimit", True),
                                        ("LimitExceeded.PhoneNumberDailyLimit", False),
                                        ("FailedOperation.InsufficientBalanceInSmsPackage", True)])
def test_tencent_refusal_codes(tencent, code, retry):
    tencent.fault = lambda phone, i: code
    result = _send(TencentSms(secret_id=tencent.secret_id, secret_key=tencent.secret_key, sdk_app_id="1",
                              base_url=tencent.base_url))
    assert not result.ok and result.retry is retry
