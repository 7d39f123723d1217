"""Whether the package's engine can run the parity tests here (they compare exports with it)."""
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def engine_missing():
    """Why the engine can't run here (None when it can)."""
    if not os.path.exists(os.path.join(REPO, 'build', 'Release', 'jukebox.node')):
        return 'engine not built (build/Release/jukebox.node missing: run npm ci)'
    if not os.path.exists(os.path.join(REPO, 'dist', 'index.js')):
        return 'dist/index.js missing: run npx tsc -p tsconfig.build.json'
    try:
        subprocess.run(['node', '--version'], check=True, capture_output=True)
    except Exception:
        return 'node not found'
    return None
