"""The sign-up benchmark's table: one line per run, the ratios under each database, the aims
beside the figures (a missed aim is reported, never a failure)."""

AIM_RATIO = 0.5
AIM_P99_MS = 150.0
SINGLE, SEVERAL, FLOOR, BASELINE = "ours", "ours ×5", "floor", "baseline"


def percentile(values, fraction):
    """The value below which `fraction` of the values lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def _aim(ok):
    return "ok" if ok else "MISSED"


def _per_signup_ms(seconds, count):
    return seconds * 1000 / count if count else float("nan")


def _row(result):
    p99 = percentile(result.post_ms, 0.99)
    aims = ""
    if result.app == SINGLE:
        aims = (f"  aims: POST p99 < {AIM_P99_MS:g} ms {_aim(p99 < AIM_P99_MS)}, "
                f"zero errors {_aim(result.error_count == 0)}")
    elif result.app == SEVERAL:
        aims = (f"  {result.rate * result.sessions:.1f} registrations/s; "
                f"zero errors {_aim(result.error_count == 0)}")
    print(f"{result.database:<11}{result.app:<10}{result.rate:>10.1f}"
          f"{percentile(result.post_ms, 0.5):>8.1f}ms{p99:>8.1f}ms"
          f"{percentile(result.pair_ms, 0.5):>8.1f}ms"
          f"{percentile(result.pair_ms, 0.99):>8.1f}ms{result.error_count:>7}"
          f"{_per_signup_ms(result.cpu_s, result.signups):>8.2f}"
          f"{_per_signup_ms(result.client_cpu_s, result.attempts):>8.2f}{aims}")


def _ratio_row(database, label, numerator, denominator, aim=""):
    cpu_ratio = (_per_signup_ms(denominator.cpu_s, denominator.signups)
                 / _per_signup_ms(numerator.cpu_s, numerator.signups))
    print(f"{database:<11}{label:<10}{numerator.rate / denominator.rate:>10.2f}{'':>47}"
          f"{cpu_ratio:>8.2f}{'':>8}{aim}")


def print_report(results):
    """The table: one line per run, the ratios under each database, aims beside the figures."""
    header = (f"{'database':<11}{'app':<10}{'sign-ups/s':>10}{'POST p50':>10}{'POST p99':>10}"
              f"{'pair p50':>10}{'pair p99':>10}{'errors':>7}{'CPU ms/sign-up':>16}")
    print()
    print(header)
    print(f"{'(pair = GET form + POST; CPU: server = gunicorn processes, client = load)':<78}"
          f"{'server':>8}{'client':>8}")
    print("-" * len(header))
    for database in dict.fromkeys(r.database for r in results):
        runs = {r.app: r for r in results if r.database == database}
        for result in runs.values():
            _row(result)
        if {SINGLE, FLOOR} <= runs.keys() and runs[FLOOR].rate:
            ratio = runs[SINGLE].rate / runs[FLOOR].rate
            _ratio_row(database, "ours/floor", runs[SINGLE], runs[FLOOR],
                       f"  aim: ratio ≥ {AIM_RATIO} {_aim(ratio >= AIM_RATIO)}")
        if {SINGLE, BASELINE} <= runs.keys() and runs[BASELINE].rate:
            _ratio_row(database, "ours/base", runs[SINGLE], runs[BASELINE])
        if {SINGLE, SEVERAL} <= runs.keys() and runs[SINGLE].rate:
            _ratio_row(database, "×5/ours", runs[SEVERAL], runs[SINGLE])
        print()
    for result in results:
        for error, count in result.errors.most_common(5):
            print(f"  {result.database}/{result.app} error ×{count}: {error}")
        if result.stored != result.acknowledged * result.sessions:
            print(f"  {result.database}/{result.app}: {result.acknowledged} sign-ups answered "
                  f"303 but {result.stored} registrations stored "
                  f"({result.sessions} per sign-up expected)")
    print("floor: a minimal Flask app, same exchange (token in Flask's session cookie, one INSERT, "
          "303), same database; baseline: the same without Flask (bare WSGI).")
    print("ours/floor, ours/base: ours ÷ floor (baseline) sign-ups/s; under CPU, floor "
          "(baseline) ÷ ours CPU per sign-up.")
    print("ours ×5: one sign-up is one submission of the form for 5 sessions (GET /signup, "
          "POST /signup), storing 5 registrations and queuing 5 emails;")
    print("×5/ours: its sign-ups/s ÷ the single session's; under CPU, single ÷ ×5 CPU per "
          "sign-up.")
    print(f"Aims for ours: sign-ups/s ≥ {AIM_RATIO} × the Flask floor, "
          f"POST p99 < {AIM_P99_MS:g} ms, zero errors; a missed aim is reported, not a failure.")
