"""Werkzeug's request containers, as Flask handlers use them: multi-valued dicts (args, form,
values, cookies, files) and uploaded files."""

import io


class BadRequest(Exception):
    """The request cannot be served as sent: pubfn answers 400 with this message, as Flask
    would (a malformed JSON body, a missing form or query key)."""

    status = 400


class BadRequestKeyError(BadRequest, KeyError):
    """`request.args['missing']`: a KeyError for the handler, a 400 for the client."""

    def __str__(self):
        return f"KeyError: {self.args[0]!r}" if self.args else "KeyError"


class UnsupportedMediaType(BadRequest):
    """`request.json` on a body that is not JSON: 415, as in Flask."""

    status = 415


def converted(value, type, default):
    """`type(value)`, or `default` when it does not convert (werkzeug's `get(..., type=)`)."""
    if type is None:
        return value
    try:
        return type(value)
    except (ValueError, TypeError):
        return default


class MultiDict(dict):
    """Keys with one or more values; `[key]`, `get` and the dict itself give the first, as
    werkzeug's do (so it is JSON-serialisable as {key: first value})."""

    def __init__(self, pairs=()):
        super().__init__()
        self._lists = {}
        for key, value in pairs:
            if key not in self._lists:
                self._lists[key] = []
                dict.__setitem__(self, key, value)
            self._lists[key].append(value)

    def __getitem__(self, key):
        if key in self._lists:
            return self._lists[key][0]
        raise BadRequestKeyError(key)

    def __setitem__(self, key, value):
        raise TypeError("the request's values cannot be changed")

    def get(self, key, default=None, type=None):
        if key not in self._lists:
            return default
        return converted(self._lists[key][0], type, default)

    def getlist(self, key, type=None):
        values = list(self._lists.get(key, ()))
        if type is None:
            return values
        converted = []
        for value in values:
            try:
                converted.append(type(value))
            except (ValueError, TypeError):
                pass
        return converted

    def to_dict(self, flat=True):
        if flat:
            return {key: values[0] for key, values in self._lists.items()}
        return {key: list(values) for key, values in self._lists.items()}

    def items(self, multi=False):
        if multi:
            return [(k, v) for k, values in self._lists.items() for v in values]
        return [(k, values[0]) for k, values in self._lists.items()]

    def lists(self):
        return [(k, list(values)) for k, values in self._lists.items()]

    def values(self):
        return [values[0] for values in self._lists.values()]

    def __repr__(self):
        return f"{type(self).__name__}({self.items(multi=True)!r})"


class CombinedMultiDict(MultiDict):
    """Several MultiDicts read as one, the first that has a key first (`request.values`)."""

    def __init__(self, dicts):
        super().__init__((k, v) for d in dicts for k, v in d.items(multi=True))


class FileStorage:
    """An uploaded file of a multipart body, kept in memory (the sandbox has no disk)."""

    def __init__(self, name, filename, content_type, data):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.mimetype = (content_type or "").split(";", 1)[0].strip().lower()
        self.content_length = len(data)
        self.stream = io.BytesIO(data)

    def read(self, size=-1):
        return self.stream.read(size)

    def save(self, dst, buffer_size=16384):
        """Copies the file into `dst`, a writable file object (e.g. io.BytesIO): a path
        cannot be written, as the sandbox has no writable filesystem."""
        if isinstance(dst, (str, bytes)) or hasattr(dst, "__fspath__"):
            raise PermissionError("the sandbox has no writable filesystem: save() into a file "
                                  "object such as io.BytesIO")
        self.stream.seek(0)
        while True:
            chunk = self.stream.read(buffer_size)
            if not chunk:
                break
            dst.write(chunk)

    def __bool__(self):
        return bool(self.filename)

    def __repr__(self):
        return f"<FileStorage: {self.filename!r} ({self.content_type!r})>"


class UserAgent:
    """`request.user_agent`: the User-Agent header as werkzeug wraps it."""

    def __init__(self, string):
        self.string = string or ""

    def __str__(self):
        return self.string

    def __bool__(self):
        return bool(self.string)

    def __repr__(self):
        return f"<UserAgent {self.string!r}>"


class Authorization:
    """`request.authorization`: Basic (`username`, `password`) or a token scheme (`token`)."""

    def __init__(self, auth_type, username=None, password=None, token=None):
        self.type = auth_type
        self.username = username
        self.password = password
        self.token = token

    def __repr__(self):
        return f"<Authorization {self.type}>"
