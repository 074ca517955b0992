# The demo handler: `pubfn run examples/hello.py --query name=Ada`
import datetime


def handler():
    name = request.args.get("name", "world")
    print(f"greeting {name}")
    return {"hello": name, "method": request.method, "at": datetime.date(2026, 1, 1)}
