"""The admin password policy and the argon2 hasher. Pure: no I/O, no clock.

A password is refused when it is shorter than ``MIN_LENGTH`` characters, is on
the built-in list of common passwords (case-insensitive), is a common word
dressed up with digits, symbols or look-alike characters (``P@ssw0rd2024!``),
repeats one short pattern (``abcabcabcabc``), or contains the username.
Everything else is accepted: length beats composition rules, so there are no
"must contain a digit" demands (NIST SP 800-63B, section 5.1.1.2).

Passwords are NFKC-normalised before hashing and checking, so the same
password typed on the kiosk's on-screen keyboard and in a terminal agree.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from argon2 import PasswordHasher

from consultease.errors import ValidationError

MIN_LENGTH: Final = 12
MAX_LENGTH: Final = 1024
"""Longer input is refused before hashing, so nobody can make argon2 chew megabytes."""

# Well-known passwords of 12 characters or more (shorter ones fail the length
# rule anyway), gathered from public breach-corpus frequency lists. Compared
# lower-cased, after NFKC normalisation.
_COMMON_TEXT: Final = """
password1234 password12345 password123456 password1234567 password123! password!234
password2020 password2021 password2022 password2023 password2024 password2025 password2026
passw0rd1234 p@ssw0rd1234 p@ssword1234 p@55w0rd1234 passw0rd123! p@ssword123! password@123
1234password 123password! passwordpassword password1password passwordadmin adminpassword
mypassword12 mypassword123 mypassword1234 thisismypassword thisisapassword newpassword1
newpassword123 oldpassword1 nopassword12 secretpassword supersecret1 supersecret123
supersecretpassword defaultpassword default12345 changeme1234 changeme123! changemenow1
changemeplease temporary123 temppassword temp12345678 guest1234567 useruser1234 testtest1234
test12345678 testpassword test@1234567 administrator administrator1 administrator123 admin1234567
admin@123456 admin12345678 adminadmin123 adminadmin1234 rootpassword root12345678 rootroot1234
qwertyuiop12 qwertyuiop123 qwertyuiop1234 qwertyuiop!@ qwertyuiopas qwertyuiopasdf
qwertyuiopasdfghjkl qwertyuiopasdfghjklzxcvbnm qwerty123456 qwerty1234567 qwerty12345! qwerty@12345
qwertyqwerty qwertyqwerty1 123456qwerty 1234qwerasdf 1234567890qwerty qwer1234qwer qwerasdfzxcv
qwerasdf1234 asdfqwerzxcv asdfghjkl123 asdfghjkl1234 asdfghjklzxcv asdfasdfasdf asdf1234asdf
zxcvbnm12345 zxcvbnm123456 zxcvbnmasdfg zxcvbnm,./12 mnbvcxz12345 poiuytrewq12
poiuytrewq123 1q2w3e4r5t6y 1q2w3e4r5t6y7u 1q2w3e4r5t6y7u8i q1w2e3r4t5y6 q1w2e3r4t5y6u7
1qaz2wsx3edc 1qaz2wsx3edc4rfv 1qaz@wsx3edc !qaz2wsx#edc !qaz@wsx#edc zaq12wsxcde3 zaq1zaq1zaq1
zaq1xsw2cde3 qazwsxedcrfv qazwsxedcrfvtgb qazwsx123456 qweasdzxc123 qweqweqweqwe qweasdzxcqwe
a1b2c3d4e5f6 1a2b3c4d5e6f abcdefghijkl abcdefghijklm abcdefghijklmnop abcdefg12345 abc123abc123
abcd1234abcd abcd12345678 abcdef123456 123456abcdef 123456789abc abc123456789 aaaaaaaaaaaa
111111111111 000000000000 123123123123 121212121212 123456123456 123456654321 123456789012
1234567890123 12345678901234 123456789123 1234567891011 098765432109 0987654321qwerty 987654321012
987654321987 147258369123 147258369147 159753159753 159357159357 112233445566 111222333444
iloveyou1234 iloveyou12345 iloveyou123! iloveyouforever iloveyoubaby iloveyousomuch iloveyoutoo1
iloveyoumom1 iloveyoujesus iloveyougod1 loveyou12345 lovelove1234 loveyouforever mylove123456
babygirl1234 sweetheart12 sweetheart123 forever12345 foreverlove1 friends12345 bestfriend12
bestfriends1 familyfirst1 letmein12345 letmein123456 letmeinplease letmeinnow123 letmein!2345
welcome12345 welcome123456 welcome@1234 welcome2024! welcometothejungle welcomehome1 opensesame123
trustno1trustno1 trustno11234 whatever1234 whatever123! helloworld12 helloworld123 helloworld!!
hello1234567 hellohello12 goodmorning1 goodmorning123 happybirthday happynewyear merrychristmas
christmas2024 iamtheboss12 letsgo123456 nevergiveup1 neverforget1 imissyou1234 mahalkita123
mahalkokayo1 iloveyoumahal pilipinas123 philippines1 philippines123 manila123456 starwars1234
maytheforcebewithyou harrypotter1 harrypotter123 lordoftherings blink182blink182 linkinpark12
manchesterunited manutd123456 liverpoolfc1 liverpool1234 chelseafc123 chelsea12345 arsenal12345
barcelona123 barcelona1234 realmadrid12 realmadrid123 juventus1234 football1234 football12345
baseball1234 basketball12 basketball123 soccer123456 hockey123456 superman1234 superman12345
batman123456 spiderman123 ironman12345 pokemon12345 pokemon123456 naruto123456 minecraft123
minecraft1234 fortnite1234 roblox123456 playstation1 playstation2 playstation3 playstation4
playstation5 nintendo1234 xboxlive1234 computer1234 computer12345 internet1234 samsung12345
iphone123456 blackberry12 princess1234 princess12345 sunshine1234 sunshine12345 butterfly123
chocolate123 chocolate1234 strawberry12 pineapple123 watermelon12 rainbow12345 sunflower123
michael12345 jennifer1234 jessica12345 michelle1234 christopher1 christopher12 alexander123
elizabeth123 victoria1234 jonathan1234 nicholas1234 anthony12345 benjamin1234 charlie12345
danielle1234 monkey123456 dragon123456 master123456 shadow123456 killer123456 freedom12345
blessed12345 jesuschrist1 jesuslovesme godisgood123 godisgreat12 summer123456 winter123456
spring123456 autumn123456 january12345 december1234 monday123456 friday123456 newyork12345
london123456 california12 america12345 canada123456 australia123 university12 university123
student12345 teacher12345 professor123 faculty12345 department12 consultease1 consultease12
consultease123 consultease2024 consultease2025 consultease2026 kiosk1234567 kioskadmin123
raspberrypi1 raspberrypi123 raspberry123 mosquitto123 postgres1234 postgresql12 postgresql123
database1234 database12345 mysql1234567 server123456 office123456 company12345 business1234
security1234 computer@123 internet@123 wifipassword correcthorsebatterystaple
"""

COMMON_PASSWORDS: Final[frozenset[str]] = frozenset(_COMMON_TEXT.split())

# Words that stay guessable whatever digits or symbols are wrapped around them.
_COMMON_WORDS_TEXT: Final = """
    password passwort passwd secret letmein welcome admin administrator root guest user login
    qwerty qwertz azerty asdf asdfgh asdfghjkl zxcvbnm qwertyuiop iloveyou loveyou love monkey
    dragon master shadow sunshine princess football baseball basketball soccer hockey superman
    batman spiderman pokemon starwars whatever trustno freedom computer internet samsung iphone
    michael jennifer jessica michelle charlie jordan hunter ranger buster thomas daniel andrew
    summer winter spring autumn christmas hello helloworld welcomehome changeme default temp
    temporary test testing consultease kiosk faculty student teacher professor university
    college school campus library office company business database postgres mosquitto
    raspberry chocolate butterfly flower rainbow angel babygirl blessed jesus family friends
    liverpool chelsea arsenal barcelona manchester realmadrid juventus
"""
_COMMON_WORDS: Final[frozenset[str]] = frozenset(_COMMON_WORDS_TEXT.split())

# Look-alike characters people substitute for letters ("p@ssw0rd").
_LEET: Final = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
# Digits, symbols and spaces at either end: "2024", "!!", "123#".
_DECORATION: Final = re.compile(r"^[\W\d_]+|[\W\d_]+$")
# A short unit repeated: "abcabcabcabc", "aaaaaaaaaaaa", "12121212".
_REPEATED: Final = re.compile(r"^(.{1,4})\1+$", re.DOTALL)


class PasswordRejected(ValidationError):
    """A new password does not meet the policy. ``field`` is always ``"password"``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="password")


def normalise(password: str) -> str:
    """The form that is checked and hashed (NFKC)."""
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, *, username: str | None = None) -> None:
    """Raise ``PasswordRejected`` with a clear message when ``password`` is too weak."""
    password = normalise(password)
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(
            f"password is too short: use at least {MIN_LENGTH} characters "
            f"(a few unrelated words make a good one)"
        )
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"password is too long: use at most {MAX_LENGTH} characters")
    lowered = password.casefold()
    if lowered in COMMON_PASSWORDS:
        raise PasswordRejected("that password is on the list of common passwords: choose another")
    core = _DECORATION.sub("", lowered)
    if not core or core in _COMMON_WORDS or core.translate(_LEET) in _COMMON_WORDS:
        raise PasswordRejected(
            "that password is a common word with digits or symbols added: choose another"
        )
    if _REPEATED.match(lowered):
        raise PasswordRejected("that password repeats one short pattern: choose another")
    if username and len(username) >= 3 and username.casefold() in lowered:
        raise PasswordRejected("password must not contain the username")


def make_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's current defaults (RFC 9106, low-memory profile).

    When a later release raises the defaults, ``check_needs_rehash`` notices
    on the next successful login and the stored hash is upgraded.
    """
    return PasswordHasher()
