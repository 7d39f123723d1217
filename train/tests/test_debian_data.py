"""The dataset builder's pure parts: DEP-5 licence lookup, name normalisation, the split."""
import unittest

from jukebox_train.common import norm_v2
from jukebox_train.debian_data import ALLOWED, REFUSED, holdout, licence_of, parse_copyright, track_id

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2010 Someone
License: GPL-3+

Files: data/*
Copyright: 2010 Artists
License: CC-BY-3.0

Files: data/audio/music/*
Copyright: 2008 Obsidian Shell
License: CC-BY-SA-3.0

Files: data/audio/music/secret.ogg
Copyright: 2008 Label
License: CC-BY-NC-SA-3.0
"""


class Licences(unittest.TestCase):
    def test_last_matching_stanza_wins_and_installed_prefixes_are_ignored(self):
        st = parse_copyright(COPYRIGHT)
        self.assertEqual(len(st), 4)
        self.assertEqual(licence_of('usr/share/games/x/audio/music/song.ogg', st)[0], 'CC-BY-SA-3.0')
        self.assertEqual(licence_of('usr/share/games/x/data/audio/music/song.ogg', st)[0], 'CC-BY-SA-3.0')
        self.assertEqual(licence_of('usr/share/games/x/data/sfx.ogg', st)[0], 'CC-BY-3.0')
        self.assertEqual(licence_of('usr/bin/x', st)[0], 'GPL-3+')
        self.assertEqual(licence_of('usr/share/x/audio/music/secret.ogg', st)[0], 'CC-BY-NC-SA-3.0')

    def test_allow_list(self):
        for ok in ('GPL-2', 'GPL-2+', 'CC-BY-SA-3.0', 'CC-BY-4.0', 'CC0-1.0', 'MIT', 'Expat', 'BSD-3-clause'):
            self.assertTrue(ALLOWED.search(ok) and not REFUSED.search(ok), ok)
        for bad in ('CC-BY-NC-SA-3.0', 'CC-BY-ND-4.0', 'proprietary', 'unknown'):
            self.assertFalse(ALLOWED.search(bad) and not REFUSED.search(bad), bad)


class Names(unittest.TestCase):
    def test_engine_v2_rule(self):
        self.assertEqual(norm_v2('Mattias Westlund'), 'mattias_westlund')
        self.assertEqual(norm_v2('  Joseph G. Toscano (zhaytee) '), 'joseph_g_toscano_zhaytee')
        self.assertEqual(track_id('fretsonfire-songs-muldjord', 'usr/share/games/f/muldjord/chaos_god/song.ogg'), 'fof-muldjord-chaos_god')
        self.assertEqual(track_id('nexuiz-music', 'usr/share/games/nexuiz/data/music.pk3!sound/cdtracks/track02.ogg'), 'nexuiz-track02')

    def test_split_is_deterministic_and_about_a_tenth(self):
        ids = [f'pkg-track{i}' for i in range(2000)]
        held = sum(holdout(i) for i in ids)
        self.assertTrue(120 < held < 240, held)
        self.assertEqual([holdout(i) for i in ids], [holdout(i) for i in ids])


if __name__ == '__main__':
    unittest.main()
