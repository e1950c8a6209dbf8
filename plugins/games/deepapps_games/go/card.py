"""The bundled model's card (plain data: importing this module imports nothing heavy)."""

CARD_7X7_ZERO: dict = {
    "summary": (
        "7x7 Go policy-value network (4 residual blocks x 32 channels, ownership head) trained from scratch "
        "by AlphaZero-style self-play on a shared 2-core CPU in 55 minutes: 1,848 games, 8 promoted generations."
    ),
    "params": 81740,
    "license": "Apache-2.0",
    "training_data": "self-play games generated during training (no external data); komi 7.5, Tromp-Taylor area scoring",
    "metrics": {
        "vs_random_200_visits": {"games": 200, "wins": 200, "win_rate": 1.0, "ci95": [0.9812, 1.0]},
        "vs_gnugo_level1_200_visits": {"games": 100, "wins": 0, "win_rate": 0.0, "ci95": [0.0, 0.037]},
        "vs_gnugo_level10_200_visits": {"games": 100, "wins": 12, "win_rate": 0.12, "ci95": [0.0699, 0.1981]},
        "selfplay_games": 1848,
        "training_wall_minutes": 55,
    },
    "metrics_command": (
        "deepapps go arena --model go-7x7-zero --opponent random --games 200 --visits 200 --workers 2 --seed 0 --json; "
        "deepapps go arena --model go-7x7-zero --opponent gnugo --level 1 --games 100 --visits 200 --workers 1 --seed 0 --json; "
        "deepapps go arena --model go-7x7-zero --opponent gnugo --level 10 --games 100 --visits 200 --workers 1 --seed 0 --json "
        "(GNU Go 3.8 with --chinese-rules --capture-all-dead)"
    ),
    "training_command": (
        "deepapps train go --out runs/go7 --size 7 --komi 7.5 --minutes 55 --workers 2 --blocks 4 --channels 32 "
        "--visits 96 --fast-visits 24 --full-prob 0.25 --seed 1 "
        "&& cp runs/go7/model.safetensors plugins/games/deepapps_games/go/models/go-7x7-zero.safetensors"
    ),
    "limitations": (
        "Trained for 7x7, komi 7.5, Tromp-Taylor scoring; plays other sizes (the net is fully convolutional) but "
        "weakly. Beats random play, but loses to GNU Go level 1 (0/100). Self-play is timing-dependent (worker "
        "processes), so a rerun of the training command gives a similar, not bit-identical, model."
    ),
}

CARD_7X7: dict = {
    "summary": (
        "7x7 Go policy-value network (4 residual blocks x 48 channels, ownership head) trained by supervised "
        "learning on 8,000 GNU Go level-1 self-play games (AlphaGo's first stage, GNU Go as the expert): "
        "6.6 minutes of training on one CPU thread after 43 minutes of game generation."
    ),
    "params": 177820,
    "license": "Apache-2.0",
    "training_data": (
        "8,000 GNU Go 3.8 level-1 self-play games generated here (up to 6 random opening moves, 4% random moves "
        "later, not used as targets): 306,725 positions; 5% of the games held out; komi 7.5, Tromp-Taylor area "
        "scoring (GNU Go with --chinese-rules --capture-all-dead --never-resign)"
    ),
    "metrics": {
        "held_out_move_top1": 0.6285,
        "held_out_move_top3": 0.8577,
        "held_out_value_mse": 0.2793,
        "held_out_outcome_accuracy": 0.9046,
        "vs_random_200_visits": {"games": 200, "wins": 200, "win_rate": 1.0, "ci95": [0.9812, 1.0]},
        "vs_gnugo_level1_200_visits": {
            "games": 100,
            "wins": 51,
            "win_rate": 0.51,
            "ci95": [0.4135, 0.6058],
            "wins_as_black": 49,
            "wins_as_white": 2,
            "distinct_games": 24,
        },
        "vs_gnugo_level10_200_visits": {
            "games": 100,
            "wins": 56,
            "win_rate": 0.56,
            "ci95": [0.4623, 0.6533],
            "wins_as_black": 50,
            "wins_as_white": 6,
            "distinct_games": 23,
        },
    },
    "metrics_command": (
        "deepapps go arena --model go-7x7 --opponent random --games 200 --visits 200 --workers 2 --seed 0 --json; "
        "deepapps go arena --model go-7x7 --opponent gnugo --level 1 --games 100 --visits 200 --workers 2 --seed 0 --json; "
        "deepapps go arena --model go-7x7 --opponent gnugo --level 10 --games 100 --visits 200 --workers 2 --seed 0 --json "
        "(GNU Go 3.8 with --chinese-rules --capture-all-dead; our first two moves sampled by visit count, "
        "--sample-moves 4; search code of Dec 1, where a collision no longer ends a batch); held-out figures: "
        "400 games (5%) never trained on, from `deepapps go pretrain`"
    ),
    "training_command": (
        "deepapps go teacher-games --games 8000 --level 1 --seed 1 --workers 2 --out runs/teacher/l1_8k.safetensors "
        "&& deepapps go pretrain runs/teacher/l1_8k.safetensors --out runs/go-pre --blocks 4 --channels 48 "
        "--steps 2500 --batch 256 --lr 0.002 --seed 0 --threads 1 "
        "&& cp runs/go-pre/model.safetensors plugins/games/deepapps_games/go/models/go-7x7.safetensors"
    ),
    "limitations": (
        "Trained for 7x7, komi 7.5, Tromp-Taylor scoring. It learned from GNU Go, not from self-play, so it "
        "inherits GNU Go's style. 7x7 is believed to be a black win by 9 points with best play, so at komi 7.5 "
        "black should win by 1.5. As black it beat GNU Go level 1 in 49 of 50 games; as white it won 2 of 50, "
        "most losses by exactly 1.5 points. Its overall score against level 1 is 51/100 (95% CI 41-61%); two "
        "earlier runs with the previous search code gave 48/100 and 52/100. So it is about even with level 1, "
        "not clearly better. Against level 10 it won 6 of 50 games as white. The arena games come from 23-24 "
        "distinct move sequences: both engines are nearly deterministic, and only our first two moves are sampled."
    ),
}

CARD_9X9: dict = {
    "summary": (
        "9x9 Go policy-value network (4 residual blocks x 48 channels, ownership head) trained by supervised "
        "learning on 6,000 GNU Go level-1 self-play games on 9x9: 7.0 minutes of training on two CPU threads "
        "after 29.5 minutes of game generation."
    ),
    "params": 177820,
    "license": "Apache-2.0",
    "training_data": (
        "6,000 GNU Go 3.8 level-1 self-play games on 9x9 generated here (up to 6 random opening moves, 4% random "
        "moves later, not used as targets): 356,089 positions; 300 games (5%) held out; komi 7.5, Tromp-Taylor "
        "area scoring (GNU Go with --chinese-rules --capture-all-dead --never-resign)"
    ),
    "metrics": {
        "held_out_move_top1": 0.5386,
        "held_out_move_top3": 0.7903,
        "held_out_value_mse": 0.4329,
        "held_out_outcome_accuracy": 0.8477,
        "vs_random_200_visits": {
            "games": 200,
            "wins": 200,
            "win_rate": 1.0,
            "ci95": [0.9812, 1.0],
            "distinct_games": 200,
        },
        "vs_gnugo_level1_200_visits": {
            "games": 100,
            "wins": 69,
            "win_rate": 0.69,
            "ci95": [0.5937, 0.7722],
            "wins_as_black": 36,
            "wins_as_white": 33,
            "distinct_games": 89,
        },
        "vs_gnugo_level10_200_visits": {
            "games": 100,
            "wins": 53,
            "win_rate": 0.53,
            "ci95": [0.4329, 0.6249],
            "wins_as_black": 26,
            "wins_as_white": 27,
            "distinct_games": 90,
        },
    },
    "metrics_command": (
        "deepapps go arena --model go-9x9 --opponent random --games 200 --visits 200 --workers 2 --seed 0 --json; "
        "deepapps go arena --model go-9x9 --opponent gnugo --level 1 --games 100 --visits 200 --workers 2 --seed 0 --json; "
        "deepapps go arena --model go-9x9 --opponent gnugo --level 10 --games 100 --visits 200 --workers 2 --seed 0 --json "
        "(GNU Go 3.8 with --chinese-rules --capture-all-dead; our first two moves sampled by visit count); "
        "held-out figures: 300 games never trained on, from `deepapps go pretrain`"
    ),
    "training_command": (
        "deepapps go teacher-games --games 6000 --size 9 --level 1 --seed 1 --workers 2 "
        "--out runs/teacher9/l1_6k.safetensors "
        "&& deepapps go pretrain runs/teacher9/l1_6k.safetensors --out runs/go9-pre --blocks 4 --channels 48 "
        "--steps 3000 --batch 256 --lr 0.002 --seed 0 --threads 2 "
        "&& cp runs/go9-pre/model.safetensors plugins/games/deepapps_games/go/models/go-9x9.safetensors"
    ),
    "limitations": (
        "Trained for 9x9, komi 7.5, Tromp-Taylor scoring; it learned from GNU Go level 1, not from self-play, "
        "so it inherits GNU Go's style. At 200 visits it beat GNU Go level 1 in 69 of 100 games (95% CI "
        "59-77%; 36/50 as black, 33/50 as white; 89 distinct games) and level 10 in 53 of 100 (95% CI 43-62%). It is a small network (178k parameters) "
        "trained for 7 minutes, so it still makes tactical mistakes that stronger engines punish."
    ),
}
