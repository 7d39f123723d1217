"""A one-line progress bar for training loops: rewritten in place on a terminal, one line per
update every few seconds when the output goes to a file (so logs stay readable)."""
import sys
import time


class Progress:
    def __init__(self, name, total=None, budget_s=None, every_s=10.0, file=sys.stderr, start=0):
        self.name, self.total, self.budget = name, total, budget_s
        self.t0 = time.time()
        self.file = file
        self.tty = file.isatty()
        self.every = 0.2 if self.tty else every_s
        self.last = 0.0
        self.start = start

    def update(self, done, text=''):
        now = time.time()
        if now - self.last < self.every:
            return
        self.last = now
        el = now - self.t0
        eta = ''
        if self.total:
            rate = (done - self.start) / max(el, 1e-9)
            eta = f' eta {max(0.0, (self.total - done) / max(rate, 1e-9)):.0f}s'
            head = f'{done}/{self.total}'
        else:
            head = f'{done}'
            if self.budget and self.budget != float('inf'):
                eta = f' eta {max(0.0, self.budget - el):.0f}s'
        line = f'{self.name} {head} {el:.0f}s{eta} {text}'
        if self.tty:
            self.file.write('\r' + line[:200].ljust(120))
        else:
            self.file.write(line + '\n')
        self.file.flush()

    def close(self, text=''):
        if self.tty:
            self.file.write('\n')
        if text:
            self.file.write(text + '\n')
        self.file.flush()
