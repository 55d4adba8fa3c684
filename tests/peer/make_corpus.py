#!/usr/bin/env python3
"""Regenerates the generated part of tests/peer/corpus/ deterministically.

The hand-written files (prose_en.txt, code_*.*, cjk.txt, mixed_scripts.txt, added_tokens.txt)
are committed as they are; this script writes the others:
whitespace.txt, digits.txt, punctuation.txt, contractions.txt, emoji.txt, long_tokens.txt,
combining.txt, controls_edge.txt, unicode_space_llama3.txt, invalid_utf8.bin. Output is byte-for-byte
reproducible (own PRNG; no dependence on Python's random module).

Usage: python3 tests/peer/make_corpus.py [OUT_DIR]   (default: tests/peer/corpus)
"""
import os
import sys


class Rng:
    """xorshift64*: tiny, deterministic everywhere."""

    def __init__(self, seed):
        self.s = (seed * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF or 1

    def next(self):
        s = self.s
        s ^= (s >> 12)
        s ^= (s << 25) & 0xFFFFFFFFFFFFFFFF
        s ^= (s >> 27)
        self.s = s
        return (s * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        return (self.next() >> 11) % n

    def pick(self, seq):
        return seq[self.below(len(seq))]


WORDS = ("the sea light keeper ledger gull tide wind rain north harbour bicycle Thursday "
         "coffee stone seed measure record count quiet morning evening Ida Marsh Desmond "
         "x y z a I O foo bar baz_qux camelCase snake_case SHOUTING MiXeD").split()


def whitespace(r):
    out = []
    out.append("   leading spaces at the very start of a line\n")
    # Runs of 1..50 of each kind between words.
    for n in range(1, 51):
        out.append("a" + " " * n + "b\n")
    for n in range(1, 51):
        out.append("tab" + "\t" * n + "tab\n")
    for n in range(1, 51):
        out.append("word" + " " * n + "\n")            # trailing spaces
    for n in range(1, 51):
        out.append(" " * n + "indented by %d\n" % n)
    for n in range(1, 31):
        out.append("crlf" + "\r\n" * n)
    out.append("\n")
    for n in range(1, 31):
        out.append("lf" + "\n" * n)
    for n in range(1, 21):
        out.append("cr" + "\r" * n + "x ")
    out.append("\n")
    # Mixed runs, deterministic pseudo-random.
    pieces = [" ", "  ", "\t", "\n", "\r\n", "\r", " \t", "\t ", "\n ", " \n", "\v", "\f",
              "\u00a0", "\u3000", "\u2003", "\u2009", "\u202f", "\u205f", "\u2028", "\u2029", "\u1680"]
    for line in range(200):
        words = []
        for _ in range(1 + r.below(8)):
            ws = "".join(r.pick(pieces) for _ in range(1 + r.below(6)))
            if r.below(5) == 0:
                ws = " " * (1 + r.below(50))
            words.append(r.pick(WORDS) + ws)
        out.append("".join(words) + ("\n" if r.below(3) else "\r\n"))
    # Whitespace right before punctuation, digits and letters; before/after newlines.
    for ws in [" ", "  ", "   ", "\t", " \t ", "\u00a0", "\u3000"]:
        for nxt in ["x", "1", "!", "'s", "\n", "\r\n", "中", "é", "😀"]:
            out.append("p" + ws + nxt + ws + "q" + ws + "\n")
    out.append("     \n\n\n     \t\t\t   \r\n \r\n\r\n   end with spaces and newlines   \n\n   ")
    return "".join(out)


def digits(r):
    out = ["Digits, numbers and number-like strings.\n"]
    for n in range(1, 41):                       # long numbers, 1..40 digits
        out.append("".join(str((i * 7 + n) % 10) for i in range(n)) + "\n")
    for n in range(1, 26):
        out.append("x" + "9" * n + "y " + "0" * n + " " + "1" * n + "\n")
    for _ in range(500):
        k = r.below(10)
        if k == 0:
            out.append("%d.%0*d" % (r.below(100000), 1 + r.below(8), r.below(10 ** 6)))
        elif k == 1:
            out.append("%04d-%02d-%02d" % (1900 + r.below(200), 1 + r.below(12), 1 + r.below(28)))
        elif k == 2:
            out.append("%02d/%02d/%04d %02d:%02d:%02d" % (1 + r.below(28), 1 + r.below(12),
                                                         1970 + r.below(60), r.below(24),
                                                         r.below(60), r.below(60)))
        elif k == 3:
            out.append("+%d (%03d) %03d-%04d" % (1 + r.below(99), r.below(1000), r.below(1000),
                                                r.below(10000)))
        elif k == 4:
            out.append("%d,%03d,%03d.%02d" % (r.below(1000), r.below(1000), r.below(1000), r.below(100)))
        elif k == 5:
            out.append("v%d.%d.%d-rc%d" % (r.below(10), r.below(30), r.below(200), r.below(5)))
        elif k == 6:
            out.append("0x%X 0b%s 0o%o" % (r.next() >> 20, bin(r.below(1 << 20))[2:], r.below(1 << 20)))
        elif k == 7:
            out.append("%de%d %.3fE-%d %d%%" % (r.below(10), r.below(40), r.below(10 ** 5) / 7.0,
                                                r.below(20), r.below(101)))
        elif k == 8:
            out.append("abc%ddef%dghi%d" % (r.below(10 ** 5), r.below(10), r.below(10 ** 9)))
        else:
            out.append("%d:%02d %dkm %d.%dkg %d°C -%d" % (r.below(24), r.below(60), r.below(1000),
                                                          r.below(100), r.below(10), r.below(40),
                                                          r.below(300)))
        out.append(r.pick([" ", "\n", ", ", "; ", " | "]))
    out.append("\n")
    # Non-ASCII digits and numerics (\p{N} covers Nd, Nl, No).
    out.append("Arabic-Indic ٠١٢٣٤٥٦٧٨٩ ١٢٣٤٥ Extended ۰۱۲۳۴۵۶۷۸۹\n")
    out.append("Devanagari ०१२३४५६७८९ Bengali ০১২৩৪৫৬৭৮৯ Thai ๐๑๒๓๔๕๖๗๘๙\n")
    out.append("Fullwidth １２３４５６７８９０ ２０２４年３月１日\n")
    out.append("Superscripts x² y³ 10⁻⁶ H₂O CO₂ ¹²³⁴⁵ fractions ½ ¼ ¾ ⅓ ⅞ roman Ⅰ Ⅱ Ⅻ ⅽⅾⅿ circled ① ② ⑳\n")
    out.append("Mixed 12٣4५6 ١٢3 ²²² 1½ 3¼kg 4²=16 9⁹\n")
    out.append("Phone: +44 20 7946 0958, (555) 010-9999, 555.010.1234, +1-800-FLOWERS\n")
    out.append("IP 192.168.0.255, [2001:db8::ff00:42:8329]:8080, MAC 00:1A:2B:3C:4D:5E\n")
    out.append("Pi ≈ 3.14159265358979323846264338327950288419716939937510582097494459230781640628620899\n")
    return "".join(out)


def punctuation(r):
    out = ["Punctuation clusters.\n"]
    fixed = ["?!...", "?!?!", "!!!", "???", "...", "…", "''", "\"\"", "'\"'", "---", "--", "–", "—",
             ":-)", ":-(", ";-)", ":D", "XD", ":P", "<3", "</3", "^_^", "o_O", "T_T", "¯\\_(ツ)_/¯",
             "(╯°□°)╯︵ ┻━┻", "=>", "->", "<-", "<=>", "!==", "===", "&&", "||", "::", "//", "/*", "*/",
             "#!", "@@", "$$", "%%", "^^", "&amp;", "&#x27;", "\\n", "\\\\", "``", "```", "~~~",
             "«»", "„“", "“”", "‘’", "‹›", "¿?", "¡!", "。", "、", "「」", "『』", "【】", "・", "！？",
             "§", "¶", "†", "‡", "•", "°", "±", "×", "÷", "€", "£", "¥", "$", "¢", "©", "®", "™",
             "(((", ")))", "[[", "]]", "{{", "}}", "<<", ">>", "<<<", ">>>", "_", "__", "___init___",
             ",.", ".,", ";:", ":;", "!?", "?.", "'.'", "\".\"", "-_-", "*-*", "+-+", "=-=", "|:|"]
    for f in fixed:
        out.append("x" + f + " " + f + "y " + f + "\n")
    for _ in range(1200):
        n = 1 + r.below(6)
        s = "".join(r.pick("!?.,;:'\"-_()[]{}<>/\\|@#$%^&*~`+=") for _ in range(n))
        lead = r.pick(["", " ", "  ", "\n", "a", "1", "é"])
        out.append(lead + s + r.pick(["", " ", "\n", "b", "2"]))
    out.append("\nWait... what?! No—really?!? \"Yes,\" she said; 'no,' he said... (maybe.) [citation needed]\n")
    out.append("Ellipses… and dashes – en — em ― bar; quotes «comme ça» „so“ “like” ‘this’.\n")
    out.append("Emoticons: :) :( ;) :-D :'( >:( :-/ :| B-) O:-) <(^_^)> \\o/ (^-^)/ ( ͡° ͜ʖ ͡°)\n")
    return "".join(out)


def contractions(r):
    bases = ["s", "t", "re", "ve", "m", "ll", "d"]
    out = ["Contractions in every case. GPT-2 matches them case-sensitively; Llama-3 does not.\n"]
    variants = []
    for b in bases:
        cases = {b, b.upper(), b.capitalize()}
        if len(b) == 2:
            cases |= {b[0] + b[1].upper(), b[0].upper() + b[1]}
        variants += sorted(cases)
    for v in variants:
        out.append("it'%s IT'%s It'%s 'tis '%s '%s'%s x'%sy '%s1 9'%s '%s! '%s's\n"
                   % (v, v, v, v, v, v, v, v, v, v, v))
    out.append("I'm you're he's she'll we've they'd can't won't shan't y'all'd've o'clock rock'n'roll\n")
    out.append("I'M YOU'RE HE'S SHE'LL WE'VE THEY'D CAN'T WON'T SHAN'T Y'ALL'D'VE O'CLOCK\n")
    out.append("I'M You'Re He'S She'Ll We'Ve They'D Can'T Won'T I'mM you'REe he'sS\n")
    out.append("Curly: I’m you’re it’s THEY’LL (not ASCII apostrophes); backtick: it`s; double: it''s\n")
    out.append("Quotes 'single quoted' and 'S' 'LL' 'Re' alone; trailing apostrophe: James' dogs' \n")
    out.append("Leading: 'sup 'em 'till 'round 'velvet 'mmm 'llama 'dog 'Twas 'RE 'VE\n")
    out.append("Non-Latin: Москва's 中国's Ελλάδα'S 東京'll naïve'd façade're über'VE\n")
    # Non-ASCII case variants of the contraction letters (HF's (?i:...) does not fold these).
    out.append("Folding: it'\u017f '\u017f x'\u212a y'\u212az '\ufb00 '\u00df '\u0130 it'\u01c5 'LL\u0130 '\u0280e\n")
    words = ["cat", "DOG", "Bird", "it", "that", "who", "there", "Ida", "KEEPER", "gull", "1", "9x"]
    for _ in range(900):
        w = r.pick(words)
        v = r.pick(variants)
        sep = r.pick([" ", " ", " ", "\n", "  ", ", "])
        if r.below(8) == 0:
            out.append("'" + v + sep)
        else:
            out.append(w + "'" + v + sep)
    out.append("\n")
    return "".join(out)


def emoji(r):
    singles = ["😀", "😂", "🥲", "❤️", "❤", "👍", "🙏", "🔥", "✨", "🎉", "🤖", "🦀", "🐍", "🌍", "🌊",
               "⭐", "☀️", "☂", "✅", "❌", "⚠️", "♻️", "🏳️", "🏴", "🧪", "🫠", "🥹"]
    skin = ["🏻", "🏼", "🏽", "🏾", "🏿"]
    skinnable = ["👍", "👋", "🙌", "🤝", "💪", "🧑", "👩", "👨", "🧒", "🏃", "🙋"]
    zwj = ["👨‍👩‍👧‍👦", "👩‍❤️‍👨", "👩‍💻", "🧑‍🚀", "👨‍🍳", "🏳️‍🌈", "🏴‍☠️", "🐻‍❄️", "😶‍🌫️",
           "❤️‍🔥", "🧑🏽‍🤝‍🧑🏿", "👩🏾‍🔬", "🏃‍♀️", "🙋🏻‍♂️"]
    flags = ["🇬🇧", "🇺🇸", "🇯🇵", "🇩🇪", "🇫🇷", "🇧🇷", "🇮🇳", "🇺🇦", "🇰🇷", "🇨🇳", "🇪🇺", "🇺🇳",
             "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏴󠁧󠁢󠁷󠁬󠁳󠁿"]
    keycaps = ["1️⃣", "#️⃣", "*️⃣", "0⃣", "9️⃣"]
    out = ["Emoji: singles, skin tones, ZWJ sequences, flags, keycaps, variation selectors.\n"]
    out.append(" ".join(singles) + "\n" + "".join(singles) + "\n")
    out.append(" ".join(s + t for s in skinnable for t in skin) + "\n")
    out.append(" ".join(zwj) + "\n" + "".join(zwj) + "\n")
    out.append(" ".join(flags) + "\n" + "".join(flags) + "\n")
    out.append(" ".join(keycaps) + " " + "".join(keycaps) + "\n")
    out.append("Text\uFE0E vs emoji\uFE0F: ☺\uFE0E ☺\uFE0F ♥\uFE0E ♥\uFE0F ✔\uFE0E ✔\uFE0F\n")
    pool = singles + zwj + flags + keycaps + [s + t for s in skinnable for t in skin]
    words = ["hello", "World", "gulls", "2024", "ok", "!!", "...", "中文", "é"]
    for _ in range(700):
        k = r.below(4)
        if k == 0:
            out.append(r.pick(pool) * (1 + r.below(3)))
        elif k == 1:
            out.append(r.pick(words) + r.pick(pool))
        elif k == 2:
            out.append(r.pick(pool) + r.pick(words))
        else:
            out.append(r.pick(words))
        out.append(r.pick([" ", " ", "", "\n", "  "]))
    out.append("\nThe keeper 🧑‍🦳 counted 41 gulls 🐦🐦🐦 today; wind ↗️ 18kn; mood: 🙂.\n")
    return "".join(out)


def long_tokens(r):
    out = ["Long tokens: repeated letters, base64, hex, URLs, identifiers.\n"]
    for ch, n in [("a", 10), ("a", 100), ("a", 1000), ("z", 257), ("é", 300), ("中", 200),
                  ("ab", 300), ("!", 500), ("=", 120), ("-", 300), ("0", 1000), ("😀", 100),
                  (" ", 700), ("\t", 300), ("\n", 200), ("_", 260), ("Ab", 129)]:
        out.append(ch * n + "\n")
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for _ in range(6):
        out.append("".join(r.pick(b64) for _ in range(300 + r.below(700))) + "==\n")
    for _ in range(4):
        out.append("".join("%02x" % r.below(256) for _ in range(256)) + "\n")
    out.append("https://example.invalid/a/very/long/path/" + "/".join(
        "segment%d" % i for i in range(60)) + "?q=" + "&".join("k%d=v%d" % (i, i) for i in range(40)) + "\n")
    out.append("Supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis "
               "Donaudampfschifffahrtsgesellschaftskapitän Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch\n")
    out.append("thisIsAReallyLongCamelCaseIdentifierThatKeepsGoingAndGoingForTestingPurposesOnly"
               "AndThenSomeMoreWordsAppendedToItUntilItIsWellPastTwoHundredFiftySixCharactersLong"
               "SoThatAnyCacheLimitInTheTokenizerIsExercisedByTheBytePairEncodingLoopYesReally\n")
    out.append("snake_" * 80 + "case\n")
    return "".join(out)


def controls_edge(r):
    out = ["Control characters, noncharacters, private use, unassigned and boundary scalars.\n"]
    ctrl = "".join(chr(c) for c in range(0x00, 0x20) if c not in (0x0A,)) + "\x7f"
    out.append("C0:[" + ctrl + "]\n")
    out.append("C1 (no NEL):[" + "".join(chr(c) for c in range(0x80, 0xA0) if c != 0x85) + "]\n")
    edges = ["\u00ad", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u2061",
             "\u034f", "\u061c", "\u180e", "\ufff9", "\ufffc", "\ufffd", "\ufffe", "\uffff",
             "\ue000", "\uf8ff", "\U000f0000", "\U0010fffd", "\U0010ffff", "\U0001fffe",
             "\u0378", "\u0379", "\U000e0001", "\U000e0041", "\U000e007f", "\u2800", "\u3164",
             "\U0001d400", "\U0001d7ce", "\U00010000", "\u07ff", "\u0800", "\uffef"]
    for e in edges:
        out.append("a" + e + "b " + e + " " + e + e + "1" + e + "!\n")
    for _ in range(400):
        out.append(r.pick(edges) + r.pick(["x", " ", "1", "é", "\n", "", "'s"]))
    out.append("\nNUL inside: a\x00b \x00\x00 end\n")
    return "".join(out)


def unicode_space_llama3(r):
    # U+0085 (NEL) is White_Space for Oniguruma/Rust but not for JavaScript's \s, and U+FEFF is
    # the reverse; Tokenizers.js rewrites \s in Split regexes (Llama-3) to \p{White_Space} but its
    # built-in ByteLevel regex (GPT-2 style) uses JS \s, so this file is compared for Llama-3 only.
    out = ["\ufeffBOM at start; NEL and ZWNBSP inside.\n"]
    for ws in ["\u0085", "\ufeff", " \u0085", "\u0085 ", "\u0085\u0085", "\ufeff ", " \ufeff",
               "\u0085\n", "\n\u0085", "\r\u0085\n"]:
        out.append("word" + ws + "word" + ws + "1" + ws + "!" + ws + "\n")
    for _ in range(50):
        out.append(r.pick(WORDS) + r.pick(["\u0085", "\ufeff", " ", "\u0085\u0085 ", "  \u0085"]))
    out.append("\n")
    return "".join(out)


def combining(r):
    out = ["Combining marks.\n"]
    # Decomposed (NFD) Latin: base letter + combining mark(s); no normalizer runs, so these stay decomposed.
    out.append("Decomposed: cafe\u0301 nai\u0308ve resume\u0301 Ange\u0300le pin\u0303a A\u030angstro\u0308m "
               "Z\u030cluc\u030ctoucky\u0301 Vie\u0323\u0302t Nam o\u0328\u0304\n")
    out.append("Precomposed: café naïve resumé Angèle piña Ångström Žluťoučký Việt Nam ǭ\n")
    out.append("Marks after non-letters: 1\u0301 !\u0301 \u0301 \u0301start x \u0300\u0301\u0302 "
               "\u20dd circled\u20dd a\u20e3 \"\u0308\" 9\u0335 -\u0338 =\u0338 <\u0338\n")
    out.append("Mark at line start:\n\u0301a\n\u0308\n \u0303 \n")
    out.append("Devanagari: नमस्ते दुनिया। संस्कृत क्षत्रिय ज्ञान श्री कृष्ण हिन्दी में लिखा गया पाठ। "
               "प्रकाशस्तंभ की रखवाली ँ ं ः ़ ् ॑ ॒\n")
    out.append("Devanagari digits and marks: १२३४ क्१ क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़ ॐ\n")
    out.append("Arabic with harakat: بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ — كَتَبَتْ حَارِسَةُ الْمَنَارَةِ كُلَّ مَسَاءٍ. "
               "مُحَمَّدٌ وَعَلِيٌّ ذَهَبَا إِلَى الْمَدْرَسَةِ ١٢٣\n")
    out.append("Arabic tatweel and marks alone: كـــتـــب ـَ ـِ ـُ ًٌٍَُِّْ\n")
    out.append("Hebrew with niqqud: בְּרֵאשִׁית בָּרָא שָׁלוֹם עוֹלָם\n")
    out.append("Thai tone marks: ผู้ดูแลประภาคาร น้ำ ก่อน ไม่ ที่ นี่ ๆ ฯ\n")
    out.append("Tamil: தமிழ் கலங்கரை விளக்கம் ஸ்ரீ\n")
    out.append("Korean conjoining jamo: \u1112\u1161\u11ab\u1100\u1173\u11af \u1100\u1161 \u11a8\n")
    out.append("Vietnamese stacked: Người giữ hải đăng ghi chép mỗi tối: ồ ỗ ổ ộ ẫ ậ ẳ\n")
    out.append("Variation selectors and CGJ: a\ufe00 \u2764\ufe0f \u8fbb\U000e0100 a\u034fb\n")
    marks = [chr(c) for c in range(0x0300, 0x0370)] + [chr(c) for c in range(0x0483, 0x0488)] + \
            [chr(c) for c in range(0x1ab0, 0x1abf)] + [chr(c) for c in range(0x20d0, 0x20f1)]
    # Zalgo: letters carrying 1..25 marks each; some words and a few marks on digits/spaces.
    for line in range(60):
        words = []
        for _ in range(1 + r.below(6)):
            w = "".join(ch + "".join(r.pick(marks) for _ in range(r.below(1 + line % 25)))
                        for ch in r.pick(["zalgo", "He comes", "tony", "the", "KEEPER", "123", "a b", "é", "гы"]))
            words.append(w)
        out.append(" ".join(words) + "\n")
    return "".join(out)


def invalid_utf8(r):
    parts = [
        b"Valid text first: caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 ok.\n",
        b"lone continuation: \x80 \xbf \x80\x80\x80 a\x9fb\n",
        b"truncated 2-byte: \xc3 x \xc3\n",
        b"truncated 3-byte: \xe4\xb8 x \xe2\x82 y \xe0\xa0\n",
        b"truncated 4-byte: \xf0\x9f\x98 x \xf0\x9f y \xf0 z\n",
        b"overlong: \xc0\xaf \xc1\xbf \xe0\x80\xaf \xe0\x9f\xbf \xf0\x80\x80\xaf \xf0\x8f\xbf\xbf\n",
        b"overlong NUL: \xc0\x80 and \xe0\x80\x80\n",
        b"surrogates: \xed\xa0\x80 \xed\xbf\xbf \xed\xa0\xbd\xed\xb8\x80 (CESU-8 emoji)\n",
        b"beyond U+10FFFF: \xf4\x90\x80\x80 \xf5\x80\x80\x80 \xf7\xbf\xbf\xbf\n",
        b"invalid lead bytes: \xf8\x88\x80\x80\x80 \xfc\x84\x80\x80\x80\x80 \xfe \xff \xff\xfe\n",
        b"0xFF run: \xff\xff\xff\xff and BOM-ish \xfe\xff\xef\xbb\n",
        b"Latin-1 text: na\xefve caf\xe9 \xbfqu\xe9? Stra\xdfe\n",
        b"mixed: \xe2\x82\xac\xe2\x82 \xe2\x82\xac \xf0\x9f\x87\xac\xf0\x9f\x87 end\n",
    ]
    blob = bytearray()
    for _ in range(64):
        blob.append(r.below(256))
    parts.append(b"random bytes: " + bytes(blob) + b"\n")
    parts.append(b"Last line is valid again: \xe2\x9c\x93 done.\n")
    return b"".join(parts)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out_dir, exist_ok=True)
    text_files = [("whitespace.txt", whitespace, 1), ("digits.txt", digits, 2),
                  ("punctuation.txt", punctuation, 3), ("contractions.txt", contractions, 4),
                  ("emoji.txt", emoji, 5), ("long_tokens.txt", long_tokens, 6),
                  ("controls_edge.txt", controls_edge, 7), ("combining.txt", combining, 10),
                  ("unicode_space_llama3.txt", unicode_space_llama3, 8)]
    for name, fn, seed in text_files:
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(fn(Rng(seed)).encode("utf-8"))
    with open(os.path.join(out_dir, "invalid_utf8.bin"), "wb") as f:
        f.write(invalid_utf8(Rng(9)))


if __name__ == "__main__":
    main()
