#!/usr/bin/python3
"""urllib.request client trusting the test CA: the way most Python code does HTTPS."""
import ssl
import sys
import urllib.request


def main():
    url, cafile = sys.argv[1], sys.argv[2]
    data = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None
    context = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(url, data=data, context=context, timeout=30) as response:
        sys.stdout.buffer.write(response.read())


if __name__ == "__main__":
    main()
