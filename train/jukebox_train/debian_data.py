"""The training set: freely licensed music from Debian packages, decoded with ffmpeg.

  train/jukebox-train data --out DIR [--packages a,b] [--sr 22050] [--jobs 2] [--list]

For each package: `apt-get download` (pinned version recorded), `dpkg-deb -x`, the music
files (zip members too), the licence of each file from the package's machine-readable
copyright file (DEP-5: the last `Files:` stanza whose glob matches wins), tags via ffprobe,
then ffmpeg to stereo 16-bit WAV at the model rate. Tracks whose licence does not allow
redistributing a derived model are dropped, and the reason is written down. Whole tracks are
held out for evaluation (a hash of the track id), never clips of training tracks.

Writes DIR/manifest.json (+ DIR/audio/*.wav), and the committed copies train/data/manifest.json
and train/data/LICENSES.md (no audio in git). Re-running skips finished downloads and decodes.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor

from .common import REPO, norm_v2
from .wavio import wav_layout

# Package -> where its music is, its licence where the copyright file is not machine-readable
# (read by hand from /usr/share/doc/<pkg>/copyright, quoted in LICENSES.md), the genre it maps to (tags are sparse and inconsistent, so the
# genre is chosen per package from the notes in ../shared/notes and the tags), a fallback
# artist, and files to skip. `zip`: music inside an archive in the package.
PACKAGES = {
    'wesnoth-1.16-music': {'dirs': ['usr/share/games/wesnoth/1.16/data/core/music'], 'genre': 'orchestral',
                           'artist': 'wesnoth_composers', 'licence': 'GPL-2+', 'copyright': 'the composers named in the tags'},
    'nexuiz-music': {'zip': 'usr/share/games/nexuiz/data/music.pk3', 'dirs': ['sound/cdtracks'], 'genre': 'electronic',
                     'artist': 'nexuiz_composers', 'licence': 'GPL-2+', 'copyright': 'the Nexuiz team (see the file tags)'},
    'singularity-music': {'dirs': ['usr/share/games/singularity/music'], 'genre': 'electronic', 'artist': 'maxstack',
                          'licence': 'CC-BY-SA-3.0', 'copyright': '2007-2008,2012 Max McCracken (Maxstack)'},
    'marsshooter-data': {'dirs': ['usr/share/games/marsshooter/audio/music'], 'genre': 'metal', 'artist': 'obsidian_shell'},
    'fretsonfire-songs-muldjord': {'dirs': ['usr/share/games/fretsonfire/data/songs/muldjord'], 'genre': 'metal',
                                   'artist': 'muldjord', 'only': ['song.ogg'], 'stems': ['guitar.ogg'],
                                   'licence': 'CC-BY-SA-3.0', 'copyright': '2009 El Senator (Muldjord)'},
    'fretsonfire-songs-sectoid': {'dirs': ['usr/share/games/fretsonfire/data/songs/sectoid'], 'genre': 'metal',
                                  'artist': 'sectoid', 'only': ['song.ogg'], 'stems': ['guitar.ogg'],
                                  'licence': 'MIT', 'copyright': '2006/2007 Carlos Viola Iborra (Sectoid)'},
    'colobot-common-sounds': {'dirs': ['usr/share/games/colobot/music'], 'genre': 'electronic', 'artist': 'colobot_composers'},
    # mixed styles (rock, city, oriental, pirate, ...): a generic genre rather than a wrong one
    'hedgewars-data': {'dirs': ['usr/share/games/hedgewars/Data/Music'], 'genre': 'soundtrack', 'artist': 'hedgewars_composers'},
}
AUDIO_EXT = ('.ogg', '.opus', '.mp3', '.flac', '.wav')

# Licences that allow redistributing a model trained on the work (copyleft and attribution
# licences included: we ship attribution and the licence list in the model card).
ALLOWED = re.compile(r'^(GPL|LGPL|CC-BY-SA|CC-BY|CC0|MIT|Expat|BSD|zlib|public-domain|Artistic|Drascula|OFL)', re.I)
REFUSED = re.compile(r'(-NC|-ND|non-?commercial|no-?deriv)', re.I)

# One person under several tag spellings -> one artist id.
ARTIST_ALIASES = {
    'elysis': 'gerd_elysis_raudenbusch', 'www_elysis_de': 'gerd_elysis_raudenbusch',
    'braden_walters_braden_meoblast001_walters': 'braden_walters',
}

MIN_SECONDS = 10.0
MIN_PEAK_DB = -60.0
HOLDOUT_PERCENT = 9


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# --- Debian package handling -------------------------------------------------------------

def download(pkg, debs):
    os.makedirs(debs, exist_ok=True)
    have = [f for f in os.listdir(debs) if f.startswith(pkg + '_') and f.endswith('.deb')]
    if not have:
        run(['apt-get', 'download', pkg], cwd=debs)
        have = [f for f in os.listdir(debs) if f.startswith(pkg + '_') and f.endswith('.deb')]
    deb = os.path.join(debs, sorted(have)[-1])
    version = run(['dpkg-deb', '-f', deb, 'Version']).stdout.strip()
    return deb, version


def extract(deb, dest):
    if not os.path.isdir(dest):
        tmp = dest + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        run(['dpkg-deb', '-x', deb, tmp])
        os.replace(tmp, dest)
    return dest


def parse_copyright(text):
    """DEP-5 stanzas -> [(globs, licence, copyright)], header first."""
    stanzas = []
    for block in re.split(r'\n\s*\n', text):
        fields, key = {}, None
        for line in block.splitlines():
            if line.startswith((' ', '\t')) and key:
                fields[key] += '\n' + line.strip()
            elif ':' in line:
                key, _, value = line.partition(':')
                key = key.strip().lower()
                fields[key] = value.strip()
        if 'files' in fields and 'license' in fields:
            globs = fields['files'].split()
            stanzas.append((globs, fields['license'].splitlines()[0].strip(), fields.get('copyright', '').replace('\n', '; ')))
    return stanzas


def licence_of(path, stanzas):
    """The last stanza whose glob matches the path or one of its suffixes (copyright files name
    source-tree paths; installed paths carry a prefix such as usr/share/games/)."""
    parts = path.split('/')
    found = None
    for globs, lic, holders in stanzas:
        for g in globs:
            # also the glob without leading source-tree folders ("data/audio/music/*" names
            # usr/share/games/marsshooter/audio/music/x.ogg), keeping a folder and a file part
            gs = g.split('/')
            candidates = [g] + ['/'.join(gs[i:]) for i in range(1, len(gs) - 1)]
            if any(fnmatch.fnmatchcase('/'.join(parts[i:]), c) for c in candidates for i in range(len(parts))):
                found = (lic, holders, ' '.join(globs))
    return found


# --- tags and decoding -------------------------------------------------------------------

def probe(path):
    out = run(['ffprobe', '-v', 'error', '-show_entries', 'format=duration:format_tags:stream_tags', '-of', 'json', path]).stdout
    j = json.loads(out)
    tags = {}
    for s in j.get('streams', []):
        tags.update({k.lower(): v for k, v in (s.get('tags') or {}).items()})
    tags.update({k.lower(): v for k, v in (j.get('format', {}).get('tags') or {}).items()})
    return float(j.get('format', {}).get('duration') or 0.0), tags


def decode(src, dst, sr, stems=()):
    """ffmpeg to stereo 16-bit at sr; extra stems (Frets on Fire keeps the lead guitar apart from
    the backing track) are summed in, then limited so the mix does not clip."""
    if os.path.exists(dst):
        return
    tmp = dst + '.tmp.wav'
    ins = [a for f in (src, *stems) for a in ('-i', f)]
    mix = ['-filter_complex', f'amix=inputs={1 + len(stems)}:duration=longest:normalize=0,alimiter=limit=0.97'] if stems else []
    run(['ffmpeg', '-nostdin', '-v', 'error', '-y', *ins, *mix, '-vn', '-ac', '2', '-ar', str(sr), '-c:a', 'pcm_s16le', tmp])
    os.replace(tmp, dst)


def peak_db(path):
    """Loudest sample in dB full scale (ffmpeg volumedetect): catches files of digital silence."""
    r = subprocess.run(['ffmpeg', '-nostdin', '-v', 'info', '-i', path, '-af', 'volumedetect', '-f', 'null', '-'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m = re.search(r'max_volume:\s*(-?[\d.]+|-inf) dB', r.stderr)
    return float('-inf') if not m or m.group(1) == '-inf' else float(m.group(1))


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()


# --- tracks ------------------------------------------------------------------------------

def music_files(pkg, spec, root, work):
    """-> [(path on disk, path inside the package)] of the package's music."""
    base = root
    prefix = ''
    if 'zip' in spec:
        archive = os.path.join(root, spec['zip'])
        base = os.path.join(work, 'unzipped', pkg)
        prefix = spec['zip'] + '!'
        if not os.path.isdir(base):
            with zipfile.ZipFile(archive) as z:
                for m in z.namelist():
                    if any(m.startswith(d + '/') for d in spec['dirs']) and m.lower().endswith(AUDIO_EXT):
                        z.extract(m, base)
    out = []
    for d in spec['dirs']:
        for dirpath, _, names in os.walk(os.path.join(base, d)):
            for n in sorted(names):
                if not n.lower().endswith(AUDIO_EXT) or n.endswith('_fast.ogg'):
                    continue
                if 'only' in spec and n not in spec['only']:
                    continue
                full = os.path.join(dirpath, n)
                out.append((full, prefix + os.path.relpath(full, base)))
    return sorted(out, key=lambda t: t[1])


def track_id(pkg, inner):
    short = pkg.replace('-music', '').replace('-data', '').replace('-common-sounds', '').replace('fretsonfire-songs-', 'fof-')
    stem = os.path.splitext(inner.split('!')[-1])[0]
    if stem.endswith('/song'):
        stem = os.path.dirname(stem)  # Frets on Fire: the folder names the song
    return f'{short}-{norm_v2(os.path.basename(stem))}'


def holdout(tid):
    return int(hashlib.sha256(tid.encode()).hexdigest()[:8], 16) % 100 < HOLDOUT_PERCENT


def collect(pkg, out, log):
    spec = PACKAGES[pkg]
    deb, version = download(pkg, os.path.join(out, 'debs'))
    root = extract(deb, os.path.join(out, 'x', pkg))
    cpath = os.path.join(root, 'usr/share/doc', pkg, 'copyright')
    stanzas = parse_copyright(open(cpath, encoding='utf-8', errors='replace').read()) if os.path.exists(cpath) else []
    kept, dropped = [], []
    for full, inner in music_files(pkg, spec, root, out):
        if stanzas:
            lic = licence_of(inner.split('!')[0], stanzas) or (stanzas[0][1], stanzas[0][2], '*')
        else:
            lic = (spec['licence'], spec['copyright'], 'whole package (copyright file is free text)') if 'licence' in spec else None
        if lic is None:
            dropped.append((inner, 'no copyright information'))
            continue
        licence, holders, glob = lic
        if REFUSED.search(licence) or not ALLOWED.search(licence):
            dropped.append((inner, f'licence {licence} does not allow redistributing a derived model'))
            continue
        duration, tags = probe(full)
        if duration < MIN_SECONDS:
            dropped.append((inner, f'{duration:.1f} s is shorter than {MIN_SECONDS:.0f} s'))
            continue
        loudest = peak_db(full)
        if loudest < MIN_PEAK_DB:
            dropped.append((inner, f'silence (peak {loudest} dB)'))
            continue
        stems = [os.path.join(os.path.dirname(full), n) for n in spec.get('stems', [])
                 if os.path.exists(os.path.join(os.path.dirname(full), n))]
        # ffprobe joins repeated tags with ';': keep the first spelling
        tags = {k: v.split(';')[0].strip() for k, v in tags.items()}
        who = tags.get('composer') or tags.get('artist') or ''
        kept.append({
            'id': track_id(pkg, inner), 'src': full, 'package': pkg, 'package_version': version, 'file': inner,
            'licence': licence, 'copyright': holders, 'licence_files_glob': glob,
            'artist': ARTIST_ALIASES.get(norm_v2(who), norm_v2(who)) or spec['artist'], 'composer': who or None, 'title': tags.get('title') or None,
            'genre': spec['genre'], 'raw_genre': tags.get('genre') or None, 'duration': round(duration, 3),
            'lyrics': None, 'sha256': sha256(full),
            'stems': [os.path.relpath(f, os.path.dirname(full)) for f in stems] or None, 'stem_paths': stems,
        })
    log(f'{pkg} {version}: {len(kept)} tracks kept, {len(dropped)} dropped')
    return {'name': pkg, 'version': version, 'licences': sorted({t['licence'] for t in kept}),
            'copyright_file': f'/usr/share/doc/{pkg}/copyright', 'dropped': dropped}, kept


def licences_md(packages, tracks):
    lines = ['# Training data: licences and attribution', '',
             'Written by `train/jukebox-train data`. Every track below comes from a Debian (bookworm, main) package;',
             'its licence is the one the package\'s `debian/copyright` (DEP-5) gives for that file. Only licences that',
             'allow redistributing a model trained on the work were kept (GPL, CC-BY, CC-BY-SA, CC0, MIT/BSD-style).', '',
             '## Lyrics', '',
             'No package in bookworm main ships songs with lyric text and timing (performous ships one menu song without',
             'lyrics; UltraStar song packs are not in Debian). The default model is therefore not lyric-conditioned.', '',
             '## Packages', '', '| package | version | licences | kept | held out | dropped |', '|---|---|---|---|---|---|']
    for p in packages:
        mine = [t for t in tracks if t['package'] == p['name']]
        lines.append(f"| {p['name']} | {p['version']} | {', '.join(p['licences'])} | {len(mine)} | "
                     f"{sum(t['split'] == 'test' for t in mine)} | {len(p['dropped'])} |")
    for p in packages:
        if p['dropped']:
            lines += ['', f"Dropped from {p['name']}:"] + [f'- `{f}`: {why}' for f, why in p['dropped']]
    lines += ['', '## Tracks', '', '| id | title | artist / composer | licence | copyright | split |', '|---|---|---|---|---|---|']
    for t in tracks:
        lines.append(f"| {t['id']} | {t['title'] or ''} | {t['composer'] or t['artist']} | {t['licence']} | "
                     f"{(t['copyright'] or '').replace('|', '/')} | {t['split']} |")
    return '\n'.join(lines) + '\n'


def main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train data', description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(REPO, 'train', 'cache', 'default'))
    ap.add_argument('--packages', help='comma-separated (default: all known)')
    ap.add_argument('--sr', type=int, default=22050)
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--repo-copy', default=os.path.join(REPO, 'train', 'data'),
                    help='where the committed manifest and LICENSES.md go ("" to skip)')
    ap.add_argument('--list', action='store_true')
    a = ap.parse_args(argv)
    if a.list:
        for p, s in PACKAGES.items():
            print(f"{p}: genre {s['genre']}, music in {', '.join(s['dirs'])}")
        return 0
    pkgs = a.packages.split(',') if a.packages else list(PACKAGES)
    unknown = [p for p in pkgs if p not in PACKAGES]
    if unknown:
        print(f'unknown package(s): {", ".join(unknown)}; --list shows the known ones', file=sys.stderr)
        return 2
    log = lambda m: print(m, file=sys.stderr, flush=True)
    packages, tracks = [], []
    for p in pkgs:
        info, kept = collect(p, a.out, log)
        packages.append(info)
        tracks += kept
    seen = {}
    for t in tracks:  # identical files (re-used tracks) only once
        seen.setdefault(t['sha256'], t)
    tracks = sorted(seen.values(), key=lambda t: t['id'])
    ids = [t['id'] for t in tracks]
    assert len(ids) == len(set(ids)), 'track ids collide'
    for t in tracks:
        t['split'] = 'test' if holdout(t['id']) else 'train'
    # every genre with >= 3 tracks has a held-out track
    for g in sorted({t['genre'] for t in tracks}):
        mine = [t for t in tracks if t['genre'] == g]
        if len(mine) >= 3 and not any(t['split'] == 'test' for t in mine):
            min(mine, key=lambda t: hashlib.sha256(t['id'].encode()).hexdigest())['split'] = 'test'
    os.makedirs(os.path.join(a.out, 'audio'), exist_ok=True)
    with ThreadPoolExecutor(a.jobs) as ex:
        list(ex.map(lambda t: decode(t['src'], os.path.join(a.out, 'audio', t['id'] + '.wav'), a.sr, t['stem_paths']), tracks))
    for t in tracks:
        path = os.path.join(a.out, 'audio', t['id'] + '.wav')
        t['audio'] = f"audio/{t['id']}.wav"
        t['samples'] = wav_layout(path)[1]
        del t['src'], t['stem_paths']
    manifest = {'version': 1, 'sr': a.sr, 'channels': 2, 'created_by': 'jukebox-train data',
                'packages': [{k: p[k] for k in ('name', 'version', 'licences', 'copyright_file')} for p in packages],
                'genres': sorted({t['genre'] for t in tracks}), 'artists': sorted({t['artist'] for t in tracks}),
                'tracks': tracks}
    with open(os.path.join(a.out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    if a.repo_copy:
        os.makedirs(a.repo_copy, exist_ok=True)
        with open(os.path.join(a.repo_copy, 'manifest.json'), 'w') as f:
            json.dump(manifest, f, indent=1)
        with open(os.path.join(a.repo_copy, 'LICENSES.md'), 'w') as f:
            f.write(licences_md(packages, tracks))
    hours = sum(t['duration'] for t in tracks) / 3600
    test = sum(t['split'] == 'test' for t in tracks)
    log(f'{len(tracks)} tracks, {hours:.2f} h ({test} held out), {len(manifest["artists"])} artists, genres {manifest["genres"]}')
    return 0
