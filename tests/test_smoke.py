"""The shortest story: a sandbox runs code and keeps files."""


def test_file_written_through_api_is_read_by_code(sandbox):
    sandbox.file.write("/home/user/x.txt", "hello from the API")
    with sandbox.context.create() as context:
        reply = context.execute("print(open('x.txt').read())")
    assert reply["results"][0] == {"type": "stdout", "text": "hello from the API\n"}
