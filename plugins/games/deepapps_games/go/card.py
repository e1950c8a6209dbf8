"""The bundled model's card (plain data: importing this module imports nothing heavy)."""

CARD_7X7: dict = {
    "summary": (
        "7x7 Go policy-value network (4 residual blocks x 32 channels, ownership head) trained from scratch "
        "by AlphaZero-style self-play on a shared 2-core CPU in 55 minutes: 1,848 games, 8 promoted generations."
    ),
    "params": 81740,
    "license": "Apache-2.0",
    "training_data": "self-play games generated during training (no external data); komi 7.5, Tromp-Taylor area scoring",
    "metrics": {
        "vs_random_200_visits": {"games": 200, "wins": 200, "win_rate": 1.0, "ci95": [0.9812, 1.0]},
        "vs_gnugo_level1_200_visits": {"games": 50, "wins": 0, "win_rate": 0.0, "ci95": [0.0, 0.0714]},
        "vs_gnugo_level10_200_visits": {"games": 30, "wins": 3, "win_rate": 0.1, "ci95": [0.0346, 0.2562]},
        "selfplay_games": 1848,
        "training_wall_minutes": 55,
    },
    "metrics_command": (
        "deepapps go arena --model go-7x7 --opponent random --games 200 --visits 200 --workers 2 --seed 0 --json; "
        "deepapps go arena --model go-7x7 --opponent gnugo --level 1 --games 50 --visits 200 --workers 2 --seed 0 --json; "
        "deepapps go arena --model go-7x7 --opponent gnugo --level 10 --games 30 --visits 200 --workers 2 --seed 0 --json "
        "(GNU Go 3.8 with --chinese-rules --capture-all-dead)"
    ),
    "training_command": (
        "deepapps train go --out runs/go7 --size 7 --komi 7.5 --minutes 55 --workers 2 --blocks 4 --channels 32 "
        "--visits 96 --fast-visits 24 --full-prob 0.25 --seed 1 "
        "&& cp runs/go7/model.safetensors plugins/games/deepapps_games/go/models/go-7x7.safetensors"
    ),
    "limitations": (
        "Trained for 7x7, komi 7.5, Tromp-Taylor scoring; plays other sizes (the net is fully convolutional) but "
        "weakly. Beats random play, but loses to GNU Go level 1 (0/50). Self-play is timing-dependent (worker "
        "processes), so a rerun of the training command gives a similar, not bit-identical, model."
    ),
}
