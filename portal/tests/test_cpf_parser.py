"""The merge file's reader and writer (portal/cpf/parser.py), and the kinds' key tables.

No database: the parser runs without Django, and so do the tables of keys. The merges
themselves are tested in portal/tests/test_cpf_merge.py.
"""

from __future__ import annotations

import pytest

from gateways.cpf import KIND as GATEWAY
from portal.cpf import parser
from portal.cpf.parser import Problem, VerbSpec, parse, write
from portal.cpf.registry import ValueProblem, schema
from portal.tests.test_django_free_imports import django_modules_after_importing
from webapps.cpf import KIND as APPLICATION

SEED = (
    "[Actions]\n"
    "CreateApplication:Name=/flask,NameSpace=IRISAPP,WSGIAppLocation=/irisdev/app/community/,WSGIAppName=app,"
    "WSGICallable=app,Type=2,DispatchClass=%SYS.Python.WSGI,MatchRoles=:%ALL,WSGIDebug=0,WSGIType=0\n"
)
SCHEMA = schema([GATEWAY, APPLICATION])


def convert(kind, action):  # type: ignore[no-untyped-def]
    return {key: kind.key(key).convert(value) for key, value in action.values.items()}


def test_the_seeds_line_reads_as_written_with_every_key():
    document = parse(SEED, SCHEMA)
    assert document.problems == []
    (action,) = document.actions
    assert action.line == 2 and action.verb == "CreateApplication"
    assert action.values == {
        "Name": "/flask", "NameSpace": "IRISAPP", "WSGIAppLocation": "/irisdev/app/community/",
        "WSGIAppName": "app", "WSGICallable": "app", "Type": "2", "DispatchClass": "%SYS.Python.WSGI",
        "MatchRoles": ":%ALL", "WSGIDebug": "0", "WSGIType": "0",
    }
    values = convert(APPLICATION, action)
    assert values["WSGIType"] == "wsgi" and values["WSGIDebug"] is False and values["Type"] == "2"
    assert values["MatchRoles"] == ":%ALL" and values["NameSpace"] == "IRISAPP"


@pytest.mark.parametrize(("key", "value", "words"), [
    ("Type", "4", "Type=2"),
    ("DispatchClass", "%CSP.REST", "%SYS.Python.WSGI"),
    ("WSGIType", "2", "0, 1"),
    ("WSGIDebug", "yes", "0 or 1"),
    ("Workers", "0", "1 to 32"),
    ("Engine", "waitress", "gunicorn"),
])
def test_an_application_value_it_does_not_know_is_refused_with_what_to_write(key, value, words):
    with pytest.raises(ValueProblem) as refused:
        APPLICATION.key(key).convert(value)
    assert words in str(refused.value)


def test_wsgitype_1_is_asgi_and_wsgidebug_1_is_on():
    assert APPLICATION.key("WSGIType").convert("1") == "asgi"
    assert APPLICATION.key("WSGIDebug").convert("1") is True


def test_crlf_a_bom_comments_and_blank_lines_are_read_and_lines_keep_their_numbers():
    text = "\ufeff; exported\r\n# another comment\r\n\r\n[Actions]\r\n\r\n  ; indented comment\r\n" \
           "CreateGateway:Name=PyGate,Port=55001\r\n\r\nDeleteGateway:Name=Old\r\n"
    document = parse(text.encode("utf-8"), SCHEMA)
    assert document.problems == []
    assert [(a.line, a.verb, a.values) for a in document.actions] == [
        (7, "CreateGateway", {"Name": "PyGate", "Port": "55001"}),
        (9, "DeleteGateway", {"Name": "Old"}),
    ]


def test_a_value_may_hold_equals_signs_and_a_quoted_value_commas_and_quotes():
    document = parse('[Actions]\nCreateGateway:Name=A,PythonOptions="-X dev,-W error",LogFile=/v/a=b.log,'
                     'Server= 127.0.0.1 ,Name2x=1\n', {"CreateGateway": VerbSpec(
                         ("Name", "PythonOptions", "LogFile", "Server", "Name2x"))})
    assert document.problems == []
    assert document.actions[0].values == {
        "Name": "A", "PythonOptions": "-X dev,-W error", "LogFile": "/v/a=b.log", "Server": "127.0.0.1", "Name2x": "1"}
    quoted = parse('[Actions]\nX:A="say ""hi"", twice",B=a"b\n')
    assert quoted.actions[0].values == {"A": 'say "hi", twice', "B": 'a"b'}


@pytest.mark.parametrize("value", ["plain", "a,b", '"starts with a quote', 'in"side', " spaced ", "", "k=v,w=x",
                                   ";not a comment", "%SYS.Python.WSGI", ":%ALL", "é ü 中"])
def test_what_write_writes_reads_back_the_same(value):
    text = write([("X", [("Key", value), ("Next", "n")])], header=["a header"])
    document = parse(text)
    assert document.problems == []
    assert document.actions[0].values == {"Key": value, "Next": "n"}


def test_write_quotes_only_what_needs_it():
    assert parser.quote("%SYS.Python.WSGI") == "%SYS.Python.WSGI"
    assert parser.quote("-X dev,-W error") == '"-X dev,-W error"'
    assert parser.quote('"x') == '"""x"'


def test_verbs_and_keys_are_read_regardless_of_case_and_written_as_listed():
    document = parse("[actions]\ncreategateway:name=PyGate,PORT=1\n", SCHEMA)
    assert document.problems == []
    assert document.actions[0].verb == "CreateGateway"
    assert document.actions[0].values == {"Name": "PyGate", "Port": "1"}


def test_prefixed_keys_hold_one_entry_each():
    document = parse("[Actions]\nCreateApplication:Name=/a,WSGIAppLocation=/srv,WSGIAppName=app,"
                     "Env.DEBUG=1,Env.URL=http://x/?a=b,Static./static=/srv/static\n", SCHEMA)
    assert document.problems == []
    assert document.actions[0].values["Env.URL"] == "http://x/?a=b"
    assert document.actions[0].values["Static./static"] == "/srv/static"


def one_problem(text: str) -> Problem:
    document = parse(text, SCHEMA)
    assert len(document.problems) == 1, document.problems
    return document.problems[0]


@pytest.mark.parametrize("key", [k.name for k in GATEWAY.keys])
def test_every_gateway_key_given_twice_is_refused_with_its_line(key):
    line = f"CreateGateway:Name=PyGate,Port=1,{key}=a,{key.upper()}=b" if key not in ("Name", "Port") else \
        f"CreateGateway:Name=PyGate,Port=1,{key}=x"
    problem = one_problem(f"[Actions]\n;\n{line}\n")
    assert (problem.line, problem.key) == (3, key)
    assert f"{key} is given twice" in problem.message and "keep one" in problem.message


@pytest.mark.parametrize("key", [k.name for k in APPLICATION.keys if not k.is_prefix])
def test_every_application_key_given_twice_is_refused_with_its_line(key):
    base = "CreateApplication:Name=/a,WSGIAppLocation=/srv,WSGIAppName=app"
    line = f"{base},{key}=x" if key in ("Name", "WSGIAppLocation", "WSGIAppName") else f"{base},{key}=1,{key}=2"
    problem = one_problem(f"[Actions]\n{line}\n")
    assert (problem.line, problem.key) == (2, key) and "given twice" in problem.message


@pytest.mark.parametrize(("kind", "verb", "given"), [
    (GATEWAY, "CreateGateway", {"Name": "PyGate", "Port": "55001"}),
    (APPLICATION, "CreateApplication", {"Name": "/a", "WSGIAppLocation": "/srv", "WSGIAppName": "app"}),
])
def test_every_required_key_missing_is_named_with_the_fix(kind, verb, given):
    for missing in given:
        rest = ",".join(f"{k}={v}" for k, v in given.items() if k != missing)
        problem = one_problem(f"[Actions]\n{verb}:{rest}\n")
        assert (problem.line, problem.key) == (2, missing)
        assert problem.message == f"{verb} needs {missing}: add {missing}=… to this line."


def test_modify_and_delete_need_only_the_name():
    document = parse("[Actions]\nModifyGateway:Name=A,Port=2\nDeleteGateway:Name=B\nDeleteApplication:Name=/c\n",
                     SCHEMA)
    assert document.problems == []
    problem = one_problem("[Actions]\nDeleteGateway:Name=A,Port=2\n")
    assert problem.key == "Port" and "unknown key for DeleteGateway: use one of Name." in problem.message


def test_an_unknown_key_names_the_keys_there_are():
    problem = one_problem("[Actions]\nCreateGateway:Name=A,Port=1,Colour=blue\n")
    assert (problem.line, problem.key) == (2, "Colour")
    assert "unknown key for CreateGateway: use one of Name, Server, Port," in problem.message


def test_an_unknown_verb_names_the_verbs_there_are():
    problem = one_problem("[Actions]\nCreateDatabase:Name=USER,Directory=/x\n")
    assert problem.line == 2
    assert "unknown action CreateDatabase: use one of CreateApplication, CreateGateway," in problem.message


def test_an_unknown_section_is_refused_once_and_its_lines_are_not_read():
    document = parse("[Startup]\nSystemMode=LIVE\nOther=1\n[Actions]\nDeleteGateway:Name=A\n", SCHEMA)
    assert [(p.line, p.message.split(":")[0]) for p in document.problems] == [(1, "unknown section [Startup]")]
    assert [a.verb for a in document.actions] == ["DeleteGateway"]


@pytest.mark.parametrize(("line", "words"), [
    ("CreateGateway:Name=A,,Port=1", "empty item between two commas"),
    ("CreateGateway:Name=A,Port=1,", "ends with a comma"),
    ("CreateGateway:Name=A,Port", "“Port” has no “=”"),
    ('CreateGateway:Name=A,Port=1,PythonOptions="-X dev', "no closing double quote"),
    ('CreateGateway:Name=A,Port=1,PythonOptions="-X"dev', "follows the closing quote"),
    ("CreateGateway:Name=A,Port=1,=x", "has no key before"),
    ("Name=A,Port=1", "is not an action"),
    ("just words", "is not an action"),
])
def test_a_malformed_line_says_what_to_write(line, words):
    document = parse(f"[Actions]\n{line}\n", SCHEMA)
    assert any(words in p.message and p.line == 2 for p in document.problems), document.problems


def test_an_action_before_any_section_and_an_unclosed_section_are_refused():
    assert "put [Actions] on a line above it" in one_problem("DeleteGateway:Name=A\n").message
    assert "opens a section without closing it" in parse("[Actions\n", SCHEMA).problems[0].message


def test_every_problem_is_reported_not_only_the_first():
    document = parse("[Actions]\nCreateGateway:Name=A\nCreateGateway:Port=1\nFoo:x=1\n", SCHEMA)
    assert [(p.line, p.key) for p in document.problems] == [(2, "Port"), (3, "Name"), (4, "")]
    assert str(document.problems[0]) == "line 2, Port: CreateGateway needs Port: add Port=… to this line."


def test_a_file_that_is_not_utf8_is_refused_with_the_fix():
    with pytest.raises(parser.MergeFileError) as refused:
        parse(b"[Actions]\nCreateGateway:Name=Caf\xe9\n")
    assert "save it as UTF-8" in str(refused.value)


@pytest.mark.parametrize(("key", "value", "words"), [
    ("Port", "0", "out of range"), ("Port", "65536", "out of range"), ("Port", "80a", "not a whole number"),
    ("Port", "", "not a whole number"), ("Port", "٣", "not a whole number"),
    ("UsePassphrase", "yes", "0 or 1"), ("AllowUnauthenticatedNetwork", "2", "0 or 1"),
    ("ConnectionTimeout", "1", "2 to 300"), ("InitTimeout", "301", "2 to 300"), ("StopTimeout", "0", "1 to 300"),
    ("RestartPolicy", "sometimes", "never, on-failure, always"),
])
def test_every_malformed_gateway_value_says_what_to_write(key, value, words):
    with pytest.raises(ValueProblem) as refused:
        GATEWAY.key(key).convert(value)
    assert words in str(refused.value)


@pytest.mark.parametrize("module", ["portal.cpf.parser", "portal.cpf.registry", "webapps.cpf", "programs.cpf"])
def test_the_parser_the_registry_and_the_applications_table_import_no_django(module):
    assert django_modules_after_importing(module) == []
