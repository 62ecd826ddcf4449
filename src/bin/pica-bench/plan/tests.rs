use std::collections::HashMap;
use std::time::Instant;

use super::*;

fn space() -> Arc<Space> {
    let seats = |prefix: &str, n: usize| (1..=n).map(|i| format!("{prefix}{i}")).collect();
    Arc::new(Space {
        zones: vec![
            ("coworking".into(), seats("A", 8)),
            ("quiet".into(), seats("Q", 4)),
        ],
    })
}

fn plan(scenario: Scenario, shape: Shape) -> Plan {
    Plan {
        scenario,
        shape,
        connections: 64,
        stop: Stop::Requests(1000),
        warmup: Duration::ZERO,
        hot_seats: vec!["A1".into(), "A2".into(), "A3".into(), "A4".into()],
        cancel_winners: true,
        calendar: Calendar {
            tz: chrono_tz::Asia::Jakarta,
            opens: 8,
            closes: 22,
            horizon_days: 30,
        },
        space: space(),
        seed: point_seed(1, 64, scenario),
        rate: None,
    }
}

/// `n` steps of worker `worker`, as if the server accepted every reserve and cancel.
fn run(plan: Plan, worker: usize, n: usize) -> Vec<Step> {
    let mut draws = WorkerPlan::new(Arc::new(plan), worker);
    let mut held = 0;
    (0..n)
        .map(|_| {
            let step = draws.next(held);
            match step {
                Step::Reserve(_) => held += 1,
                Step::Cancel(i) => {
                    assert!(i < held, "cancels one it holds");
                    held -= 1;
                }
                _ => {}
            }
            step
        })
        .collect()
}

fn op(step: &Step) -> Op {
    match step {
        Step::Reserve(_) => Op::Reserve,
        Step::Cancel(_) => Op::Cancel,
        Step::Availability { .. } => Op::Availability,
        Step::List => Op::List,
        Step::Echo(_) => Op::Echo,
    }
}

/// Shares of each operation in `n` steps of a worker that always holds `held`.
fn shares(scenario: Scenario, held: usize, n: usize) -> HashMap<Op, f64> {
    let mut draws = WorkerPlan::new(Arc::new(plan(scenario, Shape::Slot)), 0);
    let mut counts = HashMap::new();
    for _ in 0..n {
        *counts.entry(op(&draws.next(held))).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .map(|(op, c)| (op, c as f64 / n as f64))
        .collect()
}

#[test]
fn the_same_seed_and_worker_plan_the_same_requests() {
    for scenario in [
        Scenario::Hot,
        Scenario::Spread,
        Scenario::Mixed,
        Scenario::Echo,
    ] {
        for shape in [Shape::Day, Shape::Slot] {
            let first = run(plan(scenario, shape), 3, 500);
            assert_eq!(first, run(plan(scenario, shape), 3, 500), "{scenario:?}");
            assert_ne!(first, run(plan(scenario, shape), 4, 500), "{scenario:?}");
        }
    }
    let mut reseeded = plan(Scenario::Spread, Shape::Slot);
    reseeded.seed = point_seed(2, 64, Scenario::Spread);
    assert_ne!(
        run(plan(Scenario::Spread, Shape::Slot), 3, 500),
        run(reseeded, 3, 500)
    );
}

#[test]
fn each_point_draws_from_its_own_seed() {
    let seeds = [
        point_seed(1, 64, Scenario::Hot),
        point_seed(1, 64, Scenario::Spread),
        point_seed(1, 256, Scenario::Hot),
        point_seed(2, 64, Scenario::Hot),
    ];
    for (i, a) in seeds.iter().enumerate() {
        for b in &seeds[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn mixed_draws_reads_lists_reserves_and_cancels_in_the_documented_proportions() {
    // Holding one reservation, under the limit, every draw is taken as drawn.
    let shares = shares(Scenario::Mixed, 1, 40_000);
    for (op, want) in [
        (Op::Availability, 0.40),
        (Op::List, 0.20),
        (Op::Reserve, 0.25),
        (Op::Cancel, 0.15),
    ] {
        let got = shares.get(&op).copied().unwrap_or(0.0);
        assert!((got - want).abs() < 0.01, "{op:?}: {got:.3}, want {want}");
    }
}

#[test]
fn mixed_reserves_instead_of_cancelling_nothing_and_cancels_at_the_limit() {
    let empty = shares(Scenario::Mixed, 0, 20_000);
    assert!(!empty.contains_key(&Op::Cancel));
    assert!((empty[&Op::Reserve] - 0.40).abs() < 0.015);
    let full = shares(Scenario::Mixed, MIXED_HOLD_LIMIT, 20_000);
    assert!(!full.contains_key(&Op::Reserve));
    assert!((full[&Op::Cancel] - 0.40).abs() < 0.015);
    // Driven with every write accepted, a worker never holds more than the limit.
    let mut held = 0usize;
    for step in run(plan(Scenario::Mixed, Shape::Slot), 0, 5000) {
        match step {
            Step::Reserve(_) => held += 1,
            Step::Cancel(_) => held -= 1,
            _ => {}
        }
        assert!(held <= MIXED_HOLD_LIMIT);
    }
}

#[test]
fn mixed_reads_stay_inside_the_space_and_the_horizon() {
    let mut zones = [0; 2];
    for step in run(plan(Scenario::Mixed, Shape::Slot), 0, 5000) {
        if let Step::Availability { zone, day } = step {
            zones[zone] += 1;
            assert!((1..=30).contains(&day));
        }
    }
    assert!(zones.iter().all(|&n| n > 0), "both zones read: {zones:?}");
}

#[test]
fn hot_asks_only_for_the_hot_seats_on_the_first_day() {
    for shape in [Shape::Day, Shape::Slot] {
        let mut seen = Vec::new();
        let mut hot = plan(Scenario::Hot, shape);
        hot.cancel_winners = false;
        for step in run(hot, 0, 2000) {
            let Step::Reserve(b) = step else {
                panic!("hot without cancels only reserves: {step:?}")
            };
            assert!(["A1", "A2", "A3", "A4"].contains(&b.seat.as_str()), "{b:?}");
            assert_eq!(b.day, 1);
            // Slot shape: everyone wants 10:00-12:00.
            let want = (shape == Shape::Slot).then_some((4, 4));
            assert_eq!(b.slots, want);
            if !seen.contains(&b.seat) {
                seen.push(b.seat);
            }
        }
        assert_eq!(seen.len(), 4, "every hot seat is fought over");
    }
}

#[test]
fn hot_and_spread_winners_cancel_their_newest_reservation_at_once() {
    for scenario in [Scenario::Hot, Scenario::Spread] {
        let mut draws = WorkerPlan::new(Arc::new(plan(scenario, Shape::Day)), 0);
        assert!(matches!(draws.next(0), Step::Reserve(_)));
        assert_eq!(draws.next(2), Step::Cancel(1));
        let mut keep = plan(scenario, Shape::Day);
        keep.cancel_winners = false;
        let mut draws = WorkerPlan::new(Arc::new(keep), 0);
        assert!(matches!(draws.next(1), Step::Reserve(_)));
    }
    // Cancelling at once, a worker alternates reserve and cancel.
    let steps = run(plan(Scenario::Spread, Shape::Slot), 0, 100);
    for pair in steps.chunks(2) {
        assert!(matches!(pair, [Step::Reserve(_), Step::Cancel(0)]));
    }
}

#[test]
fn spread_and_echo_ask_for_any_seat_day_and_slots_within_opening_hours() {
    let all = space().seats();
    for scenario in [Scenario::Spread, Scenario::Echo] {
        let mut seats = Vec::new();
        let mut spread = plan(scenario, Shape::Slot);
        spread.cancel_winners = false;
        let want = match scenario {
            Scenario::Echo => Op::Echo,
            _ => Op::Reserve,
        };
        for step in run(spread, 0, 5000) {
            assert_eq!(op(&step), want, "{step:?}");
            let (Step::Reserve(b) | Step::Echo(b)) = step else {
                unreachable!()
            };
            assert!(all.contains(&b.seat));
            assert!((1..=30).contains(&b.day));
            let (first, len) = b.slots.expect("slot shape");
            assert!((1..=4).contains(&len));
            assert!(first + len <= 28, "ends by closing time: {b:?}");
            if !seats.contains(&b.seat) {
                seats.push(b.seat);
            }
        }
        assert_eq!(
            seats.len(),
            all.len(),
            "every seat of every zone is asked for"
        );
    }
    let day = run(plan(Scenario::Spread, Shape::Day), 0, 1);
    assert!(matches!(
        &day[0],
        Step::Reserve(Booking { slots: None, .. })
    ));
}

#[test]
fn bodies_are_the_seed_form_or_local_slot_boundaries() {
    let cal = plan(Scenario::Spread, Shape::Slot).calendar;
    let date = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let booking = |slots| Booking {
        seat: "A1".into(),
        day: 1,
        slots,
    };
    assert_eq!(
        cal.body_on(&booking(None), date),
        r#"{"seat_number":"A1","reservation_date":"2026-12-02"}"#
    );
    assert_eq!(
        cal.body_on(&booking(Some((4, 4))), date),
        r#"{"seat_number":"A1","start":"2026-12-02T10:00:00+07:00","end":"2026-12-02T12:00:00+07:00"}"#
    );
    // Never past closing time.
    assert_eq!(
        cal.body_on(&booking(Some((26, 4))), date),
        r#"{"seat_number":"A1","start":"2026-12-02T21:00:00+07:00","end":"2026-12-02T22:00:00+07:00"}"#
    );
}

#[test]
fn workers_share_the_users_round_robin() {
    let users: Vec<_> = (0..6).map(|w| user_for(w, 4)).collect();
    assert_eq!(
        users,
        [Some(0), Some(1), Some(2), Some(3), Some(0), Some(1)]
    );
    assert_eq!(user_for(0, 0), None);
}

#[test]
fn paced_workers_send_connections_over_rate_apart_without_catching_up() {
    assert_eq!(pacing_interval(64, None), None);
    let interval = pacing_interval(64, Some(3200.0)).unwrap();
    assert_eq!(interval, Duration::from_millis(20));
    assert_eq!(
        pacing_interval(2048, Some(11_900.0)).unwrap(),
        Duration::from_secs_f64(2048.0 / 11_900.0)
    );
    // The first request is due somewhere in the first interval, differently per worker.
    let offsets: Vec<Duration> = (0..8)
        .map(|w| {
            WorkerPlan::new(Arc::new(plan(Scenario::Mixed, Shape::Slot)), w).first_offset(interval)
        })
        .collect();
    assert!(offsets.iter().all(|o| *o < interval));
    assert!(offsets.windows(2).any(|w| w[0] != w[1]));
    // On time: the next one interval later; late: at once, and no burst after.
    let t0 = Instant::now();
    assert_eq!(next_due(t0, interval, t0), t0 + interval);
    let late = t0 + interval * 5;
    assert_eq!(next_due(t0, interval, late), late);
}
