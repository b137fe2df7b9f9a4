"""The content-addressed cache: what a build stores, and where it is shared.

* ``base``: the store Protocols (``BuildStore``, ``CacheStore``) and their data; the
  reference convention.
* ``codec``: the one canonical JSON codec, and the local and remote record formats.
* ``local``: the store on diskcache (one folder per machine, shared by projects).
* ``roots``: gc roots, the lock files whose pins ``cache gc`` keeps.
* ``policy``: a remote's mode and retry policy; ``remote_base``: what every remote
  shares (digest checks, the record envelope, one warning then unavailable).
* ``http`` (Bazel HTTP cache), ``s3`` (a bucket), ``folder`` (a shared drive or a
  repository folder): the remotes; ``remotes`` picks one from ``--remote-cache``.
* ``tiered``: the local store in front of a remote.

Nothing is imported here, so ``import recraft_build.cache.codec`` stays cheap.
"""
