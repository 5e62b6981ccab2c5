"""Pure-Python Flux job ids (RFC 19 FLUIDs) for when flux-core is absent.

flux-core's ``flux.job.JobID`` delegates parsing and encoding to
libflux-core (``flux_job_id_parse()`` / ``flux_job_id_encode()``), which
this environment cannot load.  This module reimplements the same
behaviour in Python so that events can carry a job id with the familiar
``.f58``/``.dothex``/... properties either way.

Behaviour follows flux-core 0.88's C implementation, including its
corner cases, because the point is to be indistinguishable from it:

* ``id_parse()`` accepts decimal, ``0x`` hex, dothex, ``job.`` kvs paths,
  F58 (``ƒ`` or ``f`` prefix) and emoji, chosen by the same RFC 19
  detection order (``.`` -> dothex, ``-`` -> words, ``ƒ``/``f`` -> F58,
  leading bytes F0 9F -> emoji, ``0x`` -> hex, else decimal).  Leading
  ASCII whitespace is ignored everywhere; trailing whitespace only after
  decimal and hex, as in C.  Failures raise ``OSError`` carrying the
  errno C would set (EINVAL, or ERANGE for integer overflow).
* Over-long F58 (up to 12 digits) and emoji (up to 7 emoji) strings wrap
  modulo 2**64, exactly as the C arithmetic does.
* One deliberate difference: a non-ASCII byte among F58 digits makes the
  C code index outside its digit table (undefined behaviour, with
  build-dependent results); here it is simply invalid (EINVAL).
* ``id_encode()`` chooses the ``ƒ`` F58 prefix only in a UTF-8 locale and
  when ``FLUX_F58_FORCE_ASCII`` is unset, otherwise ``f``.  (flux-core
  builds configured with ASSUME_BROKEN_LOCALE always print ``f``; that
  build option is not modelled.)

Limitation: the mnemonic "words" encoding needs mnemonicode's word list,
which is not reproduced here.  Encoding to ``words`` raises
``NotImplementedError``; parsing a string that has the shape of a words
encoding (contains ``-``, no ``.``, and exactly six runs of letters)
raises ``NotImplementedError`` too, while strings that cannot possibly
be a valid words encoding (such as ``-1``) fail with EINVAL as in C.
"""

import errno
import locale
import os
import re

__all__ = ["JobID", "id_parse", "id_encode", "f58_utf8"]

_UINT64_MAX = (1 << 64) - 1

# isspace() in the C library only ever matches these ASCII bytes, even in
# UTF-8 locales; Python's str.isspace() would also accept Unicode spaces.
_C_SPACE = b" \t\n\v\f\r"

# RFC 19 base58 alphabet (the Bitcoin one: no 0, O, I or l).
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_VALUE = {ord(ch): i for i, ch in enumerate(_B58)}
# Every two-digit base58 string, indexed by its value (0..3363), so the
# encoder peels off two digits per division instead of one.
_B58_PAIRS = [a + b for a in _B58 for b in _B58]
# C limits the digits after the prefix to 12 (58**12 > 2**64).
_F58_MAX_DIGITS = 12

_F58_PREFIX_UTF8 = "\u0192"  # LATIN SMALL LETTER F WITH HOOK
_F58_PREFIX_ASCII = "f"
_F58_PREFIX_UTF8_BYTES = _F58_PREFIX_UTF8.encode("utf-8")

# RFC 19's table of 576 emoji (data/spec_19/basemoji.h in flux-framework/rfc),
# in order: the emoji at position i is the base-576 digit i.  Each is one
# code point of four UTF-8 bytes beginning F0 9F.
_EMOJI = (
    "😃😄😁😆😅😂😉😊😍😘😚😋😜😝😏😒😌😔😪😷😵😲😳😨"
    "😰😥😢😭😱😖😣😞😓😩😫😤😡😠👿💀💩👹👺👻👽👾😺😸"
    "😹😻😼😽🙀😿😾🙈🙉🙊💌💘💝💖💗💓💞💕💟💔💛💚💙💜"
    "💋💯💢💥💫💦💨💬💤👋👌👈👉👆👇👍👎👊👏🙌👐🙏💅💪"
    "👂👃👀👅👄👶👦👧👱👨👩👴👵🙍🙎🙅🙆💁🙋🙇👮💂👷👸"
    "👳👲👰👼🎅💆💇🚶🏃💃👯🏂🏄🏊🛀👫💏💑👪👤👣🐵🐒🐶"
    "🐩🐺🐱🐯🐴🐎🐮🐷🐗🐽🐑🐫🐘🐭🐹🐰🐻🐨🐼🐾🐔🐣🐤🐥"
    "🐦🐧🐸🐢🐍🐲🐳🐬🐟🐠🐡🐙🐚🐌🐛🐜🐝🐞💐🌸💮🌹🌺🌻"
    "🌼🌷🌱🌴🌵🌾🌿🍀🍁🍂🍃🍄🍇🍈🍉🍊🍌🍍🍎🍏🍑🍒🍓🍅"
    "🍆🌽🌰🍞🍖🍗🍔🍟🍕🍳🍲🍱🍘🍙🍚🍛🍜🍝🍠🍢🍣🍤🍥🍡"
    "🍦🍧🍨🍩🍪🎂🍰🍫🍬🍭🍮🍯🍵🍶🍷🍸🍹🍺🍻🍴🔪🌏🗾🌋"
    "🗻🏠🏡🏢🏣🏥🏦🏨🏩🏪🏫🏬🏭🏯🏰💒🗼🗽🌁🌃🌄🌅🌆🌇"
    "🌉🎠🎡🎢💈🎪🚃🚄🚅🚇🚉🚌🚑🚒🚓🚕🚗🚙🚚🚲🚏🚨🚥🚧"
    "🚤🚢💺🚀🕛🕐🕑🕒🕓🕔🕕🕖🕗🕘🕙🕚🌑🌓🌔🌕🌙🌛🌟🌠"
    "🌌🌀🌈🌂🔥💧🌊🎃🎄🎆🎇🎈🎉🎊🎋🎍🎎🎏🎐🎑🎀🎁🎫🏆"
    "🏀🏈🎾🎳🎣🎽🎿🎯🔫🎱🔮🎮🎰🎲🃏🀄🎴🎭🎨👓👔👕👖👗"
    "👘👙👚👛👜👝🎒👞👟👠👡👢👑👒🎩🎓💄💍💎🔊📢📣🔔🎼"
    "🎵🎶🎤🎧📻🎷🎸🎹🎺🎻📱📲📞📟📠🔋🔌💻💽💾💿📀🎥🎬"
    "📺📷📹📼🔍🔎💡🔦🏮📔📕📖📗📘📙📚📓📒📃📜📄📰📑🔖"
    "💰💴💵💸💳💹📧📨📩📤📥📦📫📪📮📝💼📁📂📅📆📇📈📉"
    "📊📋📌📍📎📏📐🔒🔓🔏🔐🔑🔨💣🔧🔩🔗📡💉💊🚪🚽🚬🗿"
    "🏧🚹🚺🚻🚼🚾🚫🚭🔞🔃🔙🔚🔛🔜🔝🔯🔼🔽🎦📶📳📴💱💲"
    "🔱📛🔰🔟🔠🔡🔢🔣🔤🆎🆑🆒🆓🆔🆕🆖🆗🆘🆙🆚🈁🈶🈯🉐"
    "🈹🈚🈲🉑🈸🈴🈳🈺🈵🔴🔵🔶🔷🔸🔹🔺🔻💠🔘🔳🔲🏁🚩🎌"
)
_EMOJI_BASE = len(_EMOJI)
# Decoding works on UTF-8 bytes, four at a time, like the C code does.
_EMOJI_VALUE = {ch.encode("utf-8"): i for i, ch in enumerate(_EMOJI)}
# A basemoji string is 1..7 emoji: 4..28 bytes.
_EMOJI_MIN_BYTES = 4
_EMOJI_MAX_BYTES = 28

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_DEC_RUN = re.compile(rb"[0-9]*")
_HEX_RUN = re.compile(rb"[0-9a-fA-F]*")
_ALPHA_RUN = re.compile(rb"[A-Za-z]+")

# A words encoding of a 64-bit id is always exactly six words.
_WORDS_PER_ID = 6

# Bound on the F58 digit cache.  Command-line tools print the F58 id of
# every event, and a journal names each job many times, so remembering
# recent encodings pays; clearing wholesale when full keeps it cheap.
_F58_CACHE_MAX = 1 << 16
_f58_digit_cache = {}


def _oserror(err):
    """OSError shaped like the one flux-core's bindings raise for errno."""
    return OSError(err, f"{errno.errorcode[err]}: {os.strerror(err)}")


def _scan_hex4(s, pos):
    """Mimic glibc's sscanf "%4x" on bytes s from pos.

    Returns (value as C unsigned int, new pos), or None when the
    conversion fails.  The quirks matter for bit-exactness: whitespace
    before the field is skipped without counting toward the width, a
    sign and a "0x" prefix do count, and a negative value wraps.
    """
    end = len(s)
    while pos < end and s[pos] in _C_SPACE:
        pos += 1
    width = 4
    negative = False
    digits = bytearray()
    if pos < end and s[pos] in b"+-":
        negative = s[pos] == 0x2D
        pos += 1
        width -= 1
    if width and pos < end and s[pos] == 0x30:  # "0", maybe then "x"
        digits.append(0x30)
        pos += 1
        width -= 1
        if width and pos < end and s[pos] in b"xX":
            pos += 1
            width -= 1
    while width and pos < end and s[pos] in _HEX_DIGITS:
        digits.append(s[pos])
        pos += 1
        width -= 1
    if not digits:
        return None
    value = int(digits, 16)
    if negative:
        value = -value
    return value & 0xFFFFFFFF, pos


def _decode_dothex(s):
    """Decode "xxxx.xxxx.xxxx.xxxx" the way flux-core's sscanf does."""
    groups = []
    pos = 0
    for i in range(4):
        if i:
            if pos >= len(s) or s[pos] != 0x2E:
                raise _oserror(errno.EINVAL)
            pos += 1
        scanned = _scan_hex4(s, pos)
        if scanned is None:
            raise _oserror(errno.EINVAL)
        value, pos = scanned
        groups.append(value)
    if pos != len(s):
        raise _oserror(errno.EINVAL)
    # Groups are C unsigned ints (up to 32 bits after a negative wrap),
    # shifted in 64-bit arithmetic, so high bits fall off the top.
    return (
        (groups[0] << 48) | (groups[1] << 32) | (groups[2] << 16) | groups[3]
    ) & _UINT64_MAX


def _decode_words(s):
    """Reject impossible words encodings; the rest are unsupported."""
    if len(_ALPHA_RUN.findall(s)) != _WORDS_PER_ID:
        raise _oserror(errno.EINVAL)
    raise NotImplementedError(
        "decoding the mnemonic 'words' jobid encoding needs flux-core's "
        "Python bindings (flux_journal.jobid has no mnemonicode word list)"
    )


def _decode_f58(s, prefix_len):
    """Decode the base58 digits following an F58 prefix."""
    digits = s[prefix_len:]
    if not digits or len(digits) > _F58_MAX_DIGITS:
        raise _oserror(errno.EINVAL)
    value = 0
    for byte in digits:
        digit = _B58_VALUE.get(byte)
        if digit is None:
            raise _oserror(errno.EINVAL)
        value = value * 58 + digit
    # C accumulates in 64 bits, so a 12-digit string past 2**64 wraps.
    return value & _UINT64_MAX


def _is_emoji_shaped(s):
    """True if s looks like basemoji (length and leading bytes only)."""
    return (
        _EMOJI_MIN_BYTES <= len(s) <= _EMOJI_MAX_BYTES
        and len(s) % 4 == 0
        and s[0] == 0xF0
        and s[1] == 0x9F
    )


def _decode_emoji(s):
    """Decode a basemoji byte string, 4 bytes per digit."""
    value = 0
    for i in range(0, len(s), 4):
        digit = _EMOJI_VALUE.get(s[i : i + 4])
        if digit is None:
            raise _oserror(errno.EINVAL)
        value = value * _EMOJI_BASE + digit
    # Seven emoji can exceed 2**64; C's uint64 arithmetic wraps.
    return value & _UINT64_MAX


def _decode_integer(s):
    """Decode decimal or "0x" hex the way strtoull() plus checks do."""
    if s.startswith(b"0x"):
        match = _HEX_RUN.match(s, 2)
        if match.end() == 2:
            # strtoull leaves its end pointer on the "x"; never trailing space
            raise _oserror(errno.EINVAL)
        value = int(match.group(), 16)
    else:
        start = 1 if s.startswith(b"+") else 0
        match = _DEC_RUN.match(s, start)
        if match.end() == start:
            # No digits: strtoull reports 0 and no progress, which passes
            # the trailing-whitespace check only for an empty string.
            if s:
                raise _oserror(errno.EINVAL)
            return 0
        value = int(match.group())
    # strtoull's ERANGE is reported before trailing junk is looked at.
    if value > _UINT64_MAX:
        raise _oserror(errno.ERANGE)
    if s[match.end() :].strip(_C_SPACE):
        raise _oserror(errno.EINVAL)
    return value


def _fluid_parse(s):
    """Decode bytes s by RFC 19's detection rules (fluid_parse() in C)."""
    if not s:
        raise _oserror(errno.EINVAL)
    s = s.lstrip(_C_SPACE)
    if b"." in s:
        return _decode_dothex(s)
    if b"-" in s:
        return _decode_words(s)
    if s.startswith(_F58_PREFIX_UTF8_BYTES):
        return _decode_f58(s, len(_F58_PREFIX_UTF8_BYTES))
    if s.startswith(b"f"):
        return _decode_f58(s, 1)
    if _is_emoji_shaped(s):
        return _decode_emoji(s)
    return _decode_integer(s)


def id_parse(jobid_str):
    """Return the integer job id encoded in jobid_str.

    Accepts every RFC 19 encoding flux-core's ``flux.job.id_parse()``
    does (decimal, ``0x`` hex, dothex, ``job.`` kvs, F58 with ``ƒ`` or
    ``f``, emoji), as str or UTF-8 bytes, with leading whitespace
    ignored.

    Raises:
        OSError: with errno EINVAL for an invalid string (or None), or
            ERANGE for an integer beyond 64 bits, like flux-core.
        ValueError: jobid_str is neither str, bytes nor None.
        NotImplementedError: jobid_str looks like a mnemonic words
            encoding, which this module cannot decode.
    """
    if isinstance(jobid_str, str):
        # Matches how flux-core's bindings hand a str to C.
        raw = jobid_str.encode("utf-8", "surrogateescape")
    elif isinstance(jobid_str, (bytes, bytearray)):
        raw = bytes(jobid_str)
    elif jobid_str is None:
        raise _oserror(errno.EINVAL)
    else:
        raise ValueError(
            f"id_parse: expected str or bytes, not {type(jobid_str).__name__}"
        )
    if b"\0" in raw:
        # C sees the string only up to its first NUL.
        raw = raw[: raw.index(b"\0")]
    if not raw:
        raise _oserror(errno.EINVAL)
    raw = raw.lstrip(_C_SPACE)
    # A "kvs" encoding is dothex behind "job."; the prefix is optional.
    if raw.startswith(b"job."):
        raw = raw[4:]
    return _fluid_parse(raw)


# Whether FLUX_F58_FORCE_ASCII is set is asked on every F58 encoding, as
# C does.  A miss through the public os.environ mapping costs a raised and
# caught KeyError (~0.6 us), which would dominate the cost of printing an
# F58 id.  CPython's os.environ keeps its contents in the private _data
# dict, updated by every os.environ change, so look there when it exists.
try:
    _ENV_DATA = os.environ._data  # pylint: disable=protected-access
    _FORCE_ASCII_KEY = os.environ.encodekey("FLUX_F58_FORCE_ASCII")
    if not isinstance(_ENV_DATA, dict):
        raise TypeError
except (AttributeError, TypeError):  # not CPython's os._Environ
    _ENV_DATA = None
    _FORCE_ASCII_KEY = None


_NL_LANGINFO = getattr(locale, "nl_langinfo", None)
_CODESET = getattr(locale, "CODESET", None)


def _f58_prefix():
    """The F58 prefix flux-core would print in this process right now.

    C picks "ƒ" only for a multibyte UTF-8 locale and when
    FLUX_F58_FORCE_ASCII is not set (to anything, even empty).  Python
    sets LC_CTYPE from the environment at start-up, just as a C program
    calling setlocale() would, so the CODESET seen here is the one
    libflux-core would see in-process.
    """
    if _ENV_DATA is not None:
        if _FORCE_ASCII_KEY in _ENV_DATA:
            return _F58_PREFIX_ASCII
    elif "FLUX_F58_FORCE_ASCII" in os.environ:
        return _F58_PREFIX_ASCII
    if _NL_LANGINFO is None:  # platform without nl_langinfo (Windows)
        return _F58_PREFIX_ASCII
    if _NL_LANGINFO(_CODESET) == "UTF-8":
        return _F58_PREFIX_UTF8
    return _F58_PREFIX_ASCII


def _f58_digits(value):
    """Base58 digits of value (no prefix); value must be 0..2**64-1."""
    if value < 58:
        return _B58[value]
    pairs = []
    while value >= 3364:  # 58 * 58
        value, low = divmod(value, 3364)
        pairs.append(_B58_PAIRS[low])
    # value is now 1..3363: one or two leading digits, no leading "1".
    pairs.append(_B58[value] if value < 58 else _B58_PAIRS[value])
    pairs.reverse()
    return "".join(pairs)


def _encode_f58(value):
    """F58 encoding of an in-range value, with the locale's prefix.

    This is the hot path (a command prints one per event), hence the
    memo of digit strings and the prefix check kept inline.
    """
    digits = _f58_digit_cache.get(value)
    if digits is None:
        value = int(value)  # don't keep JobID objects alive as keys
        digits = _f58_digits(value)
        if len(_f58_digit_cache) >= _F58_CACHE_MAX:
            _f58_digit_cache.clear()
        _f58_digit_cache[value] = digits
    return _f58_prefix() + digits


def f58_utf8(jobid):
    """Return the F58 form of *jobid* with the ``ƒ`` prefix whatever this
    process's locale: what a broker in a UTF-8 locale writes into event
    contexts (``after-success=ƒ2XeU4Js``).  :func:`id_encode` picks the
    prefix from the locale instead, as ``flux job id`` does.

    Raises OverflowError if *jobid* is negative or over 64 bits.
    """
    value = int(jobid)
    _check_uint64(value)
    return _F58_PREFIX_UTF8 + _f58_digits(value)


def _encode_emoji(value):
    """RFC 19 emoji encoding: base 576, most significant digit first."""
    if value == 0:
        return _EMOJI[0]
    out = []
    while value:
        value, digit = divmod(value, _EMOJI_BASE)
        out.append(_EMOJI[digit])
    out.reverse()
    return "".join(out)


def _encode_dothex(value):
    """Four zero-padded 16-bit hex groups joined by dots."""
    return "%04x.%04x.%04x.%04x" % (
        (value >> 48) & 0xFFFF,
        (value >> 32) & 0xFFFF,
        (value >> 16) & 0xFFFF,
        value & 0xFFFF,
    )


def _encode_words(value):
    """Refuse the mnemonic encoding (see the module docstring)."""
    raise NotImplementedError(
        "the mnemonic 'words' jobid encoding needs flux-core's Python "
        "bindings (flux_journal.jobid has no mnemonicode word list)"
    )


_ENCODERS = {
    "dec": str,
    "hex": lambda value: "0x%x" % value,
    "kvs": lambda value: "job." + _encode_dothex(value),
    "dothex": _encode_dothex,
    "words": _encode_words,
    "f58": _encode_f58,
    "f58plain": lambda value: _F58_PREFIX_ASCII + _f58_digits(value),
    "emoji": _encode_emoji,
}


# strcasecmp() folds ASCII letters only, unlike str.lower().
_ASCII_LOWER = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
)


def _check_uint64(value):
    """Reject what cffi would refuse to pass as flux_jobid_t (uint64_t)."""
    if value < 0:
        raise OverflowError("can't convert negative number to unsigned")
    if value > _UINT64_MAX:
        raise OverflowError("int too big to convert")


def id_encode(jobid, encoding="f58"):
    """Return jobid (an int) as a string in the given RFC 19 encoding.

    encoding is one of ``dec``, ``hex``, ``kvs``, ``dothex``, ``f58``,
    ``f58plain``, ``emoji`` or ``words`` (case-insensitive; None means
    ``dec``), as accepted by flux-core's ``flux.job.id_encode()``.

    Raises:
        OverflowError: jobid is negative or does not fit in 64 bits.
        OSError: errno EPROTO for an unknown encoding, like flux-core.
        NotImplementedError: for ``words``, which this module lacks.
    """
    value = int(jobid)
    if value < 0 or value > _UINT64_MAX:
        _check_uint64(value)
    try:
        encoder = _ENCODERS.get(encoding)
    except TypeError:  # unhashable; reported as a bad type below
        encoder = None
    if encoder is None:
        if encoding is None:
            encoder = str
        else:
            if isinstance(encoding, (bytes, bytearray)):
                encoding = bytes(encoding).decode("utf-8", "surrogateescape")
            elif not isinstance(encoding, str):
                raise ValueError(
                    f"id_encode: encoding must be str, not "
                    f"{type(encoding).__name__}"
                )
            folded = encoding.translate(_ASCII_LOWER)
            encoder = _ENCODERS.get(folded)
            if encoder is None:
                raise _oserror(errno.EPROTO)
    return encoder(value)


class JobID(int):
    """A Flux job id: an ``int`` that knows its RFC 19 encodings.

    A drop-in stand-in for ``flux.job.JobID``: construct it from an int,
    another JobID, or any string :func:`id_parse` accepts; read the
    encodings back through ``.dec``, ``.hex``, ``.dothex``, ``.kvs``,
    ``.f58``, ``.f58plain``, ``.emoji`` and ``.words`` (the last raises
    ``NotImplementedError``) or :meth:`encode`.  ``str()`` is the F58
    form and ``repr()`` is ``JobID(<decimal>)``.

    Like flux-core's class, ints are taken as they are (so the sentinel
    id -1 is allowed) and only fail when encoded; invalid strings raise
    ``ValueError("<value> is not a valid Flux jobid")``.
    """

    def __new__(cls, value):
        if type(value) is int:
            # the common case (a journal's ids): orig_str is derived when
            # asked for, not stored, which halves the cost
            return int.__new__(cls, value)
        if isinstance(value, JobID):
            # flux-core copies by re-parsing the original text; doing the
            # same keeps even its corner cases (JobID(JobID(-1)) fails).
            return cls(value.orig_str)
        if isinstance(value, int):
            jobid = value
        else:
            try:
                jobid = id_parse(value)
            except OSError as exc:
                raise ValueError(f"{value} is not a valid Flux jobid") from exc
        self = int.__new__(cls, jobid)
        self.orig_str = str(value)
        return self

    @property
    def orig_str(self):
        """The value this JobID was created from, as a string."""
        return self.__dict__.get("_orig_str") or str(int(self))

    @orig_str.setter
    def orig_str(self, text):
        self.__dict__["_orig_str"] = text

    def encode(self, encoding="dec"):
        """Return this id in another encoding (see :func:`id_encode`)."""
        return id_encode(self, encoding)

    @property
    def dec(self):
        """Decimal form, e.g. ``"6731191091817518"``."""
        return id_encode(self, "dec")

    @property
    def f58(self):
        """RFC 19 F58 form, ``ƒ``-prefixed in a UTF-8 locale else ``f``."""
        # Shortcut past id_encode()'s dispatch: this is printed per event.
        if 0 <= self <= _UINT64_MAX:
            return _encode_f58(self)
        return id_encode(self, "f58")

    @property
    def f58plain(self):
        """RFC 19 F58 form, always with the ASCII ``f`` prefix."""
        return id_encode(self, "f58plain")

    @property
    def hex(self):
        """Hexadecimal form with ``0x`` prefix, lower case."""
        return id_encode(self, "hex")

    @property
    def dothex(self):
        """Dotted hex form, ``xxxx.xxxx.xxxx.xxxx``."""
        return id_encode(self, "dothex")

    @property
    def words(self):
        """Mnemonic words form; raises NotImplementedError here."""
        return id_encode(self, "words")

    @property
    def emoji(self):
        """RFC 19 emoji (base 576) form."""
        return id_encode(self, "emoji")

    @property
    def kvs(self):
        """KVS directory form, ``job.xxxx.xxxx.xxxx.xxxx``."""
        return id_encode(self, "kvs")

    @property
    def orig(self):
        """The value this JobID was made from, as a string."""
        return self.orig_str

    def __str__(self):
        if 0 <= self <= _UINT64_MAX:
            return _encode_f58(self)
        return id_encode(self, "f58")

    def __repr__(self):
        return f"JobID({id_encode(self, 'dec')})"
