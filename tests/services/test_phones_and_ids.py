import pytest

from services.errors import DomainError
from services.phones import normalise_phone
from services.pii import PersonalDataCipher, mask_id_number, normalise_id_number
from tests.factories import id_number


@pytest.mark.parametrize("raw", ["13800138000", " 138 0013 8000 ", "138-0013-8000", "+86 138 0013 8000",
                                 "+8613800138000", "008613800138000", "8613800138000", 13800138000,
                                 13800138000.0, "13800138000.0"])
def test_phone_forms_people_type_are_normalised(raw):
    assert normalise_phone(raw) == "13800138000"


@pytest.mark.parametrize("raw,code", [("", "phone_missing"), (None, "phone_missing"),
                                      ("1380013800", "phone_invalid"), ("23800138000", "phone_invalid"),
                                      ("021-64001234", "phone_invalid"), (1.38e10 + 0.5, "phone_invalid"),
                                      ("abc", "phone_invalid")])
def test_bad_phones_are_refused_with_a_code(raw, code):
    with pytest.raises(DomainError) as exc:
        normalise_phone(raw)
    assert exc.value.code == code


VALID = id_number("31011219900101123")


def test_valid_id_number_passes_and_lower_x_is_upper_cased():
    assert normalise_id_number(VALID) == VALID
    x_id = "11010519491231002X"  # GB 11643's published example
    assert normalise_id_number(x_id.lower()) == x_id


@pytest.mark.parametrize("raw,code", [
    ("3101121990010112", "id_number_length"),
    ("31011219900101123A", "id_number_format"),
    ("310112199013011234", "id_number_birthdate"),
    ("3.10112E+17", "id_number_scientific"),
    (3.10112199001011e17, "id_number_numeric"),
])
def test_bad_id_numbers_get_clear_codes(raw, code):
    with pytest.raises(DomainError) as exc:
        normalise_id_number(raw)
    assert exc.value.code == code


def test_wrong_check_digit_is_refused():
    wrong = VALID[:17] + ("0" if VALID[17] != "0" else "1")
    with pytest.raises(DomainError) as exc:
        normalise_id_number(wrong)
    assert exc.value.code == "id_number_checksum"


def test_mask_keeps_first_and_last_four():
    assert mask_id_number("310104199001011234") == "3101**********1234"


def test_cipher_round_trip_and_blind_index_is_keyed():
    from cryptography.fernet import Fernet

    a = PersonalDataCipher(Fernet.generate_key().decode())
    b = PersonalDataCipher(Fernet.generate_key().decode())
    token = a.encrypt(VALID)
    assert VALID.encode() not in token
    assert a.decrypt(token) == VALID
    assert a.blind_index(VALID) == a.blind_index(VALID)
    assert a.blind_index(VALID) != b.blind_index(VALID)
    with pytest.raises(DomainError) as exc:
        b.decrypt(token)
    assert exc.value.code == "data_key_mismatch"
