"""Tables of the bundled sample file (``meta.sample*``), filled by :mod:`ingest.sample`.

They describe how the sample chain was made (seed, versions, bot parameters, the population and
every bot decision); the chain itself is in the usual ``raw.*`` tables.
"""

from __future__ import annotations

from .schema import Column, Table, register_table

__all__ = ["META", "BOT_DECISIONS", "ACCOUNTS"]

META = register_table(Table(
    "meta", "sample",
    "Provenance and parameters of the bundled sample (one row per key): seed, code/anvil/artifact "
    "versions, window, contract addresses, deployments TOML, liquidator bot parameters (bots.*), "
    "population statistics (stats.*) and build timings (build.*, wall clock: the only "
    "run-specific values).",
    (Column("key", "VARCHAR", "parameter name, e.g. seed, bots.reaction_delay_blocks", False),
     Column("value", "VARCHAR", "its value as text (integers in decimal; units in the key's docs in "
            "ingest/sample_bots.py)", False)),
    filled_by="ingest.sample", sort_key=("key",)))

BOT_DECISIONS = register_table(Table(
    "meta", "sample_bot_decisions",
    "Every quote of the sample's liquidator bots (ingest/sample_bots.py policy): the account, the "
    "state block it was computed on, the block the liquidation would land in, the pair and amounts "
    "the bots expected, gas and profit in the oracle base currency (USD, 8 decimals), and what they "
    "did (liquidate, skip_unprofitable, skip_no_pair) with the transaction's status.",
    (Column("state_block", "UBIGINT", "block whose end state the quote used (eth_call at it)", False),
     Column("exec_block", "UBIGINT", "block the liquidation lands in (state_block + 1)", False),
     Column("user", "VARCHAR", "account, lower-case 0x-hex", False),
     Column("episode_start_block", "UBIGINT", "first observation block of the account's current "
            "underwater episode", False),
     Column("action", "VARCHAR", "liquidate | skip_unprofitable | skip_no_pair", False),
     Column("bot", "VARCHAR", "executor EOA (liquidate only)"),
     Column("collateral", "VARCHAR", "collateral asset of the best pair"),
     Column("debt", "VARCHAR", "debt asset of the best pair"),
     Column("debt_repaid_raw", "HUGEINT", "expected debt repaid, raw debt-asset units"),
     Column("collateral_to_liquidator_raw", "HUGEINT", "expected collateral to the liquidator, raw units"),
     Column("protocol_fee_raw", "HUGEINT", "expected liquidation protocol fee, raw collateral units"),
     Column("gain_base", "HUGEINT", "collateral to liquidator x price, base currency (USD 8 dec), floor"),
     Column("cost_base", "HUGEINT", "debt repaid x price, base currency, floor"),
     Column("gas_cost_base", "HUGEINT", "gas_units x (base fee of exec_block + tip) x ETH price, "
            "base currency"),
     Column("profit_base", "HUGEINT", "gain_base - cost_base - gas_cost_base"),
     Column("base_fee_next_wei", "UHUGEINT", "base fee of exec_block, wei", False),
     Column("tx_hash", "VARCHAR", "the liquidationCall transaction (liquidate only)"),
     Column("status", "VARCHAR", "ok | reverted (liquidate only)"),
     Column("gas_used", "UBIGINT", "gas the transaction used (liquidate only)")),
    filled_by="ingest.sample", sort_key=("state_block", "user")))

ACCOUNTS = register_table(Table(
    "meta", "sample_accounts",
    "The sample's seeded population: one row per account with its profile, what it opened (raw "
    "token units) and its scheduled day action.",
    (Column("user", "VARCHAR", "account, lower-case 0x-hex", False),
     Column("kind", "VARCHAR", "borrower | emode | lp", False),
     Column("profile", "VARCHAR", "aggressive | moderate | conservative (target HF band) | emode | lp",
            False),
     Column("open_block", "UBIGINT", "block of its opening transactions", False),
     Column("target_hf_bps", "UINTEGER", "health factor aimed at when opening, bps (10000 = 1.0)"),
     Column("weth_supplied_raw", "HUGEINT", "WETH supplied at opening, wei", False),
     Column("usdc_supplied_raw", "HUGEINT", "USDC supplied at opening, 6 decimals", False),
     Column("usdc_borrowed_raw", "HUGEINT", "USDC borrowed at opening, 6 decimals", False),
     Column("dai_borrowed_raw", "HUGEINT", "DAI borrowed at opening, 18 decimals", False),
     Column("emode_category", "UTINYINT", "e-mode category entered (0 = none)", False),
     Column("action", "VARCHAR", "scheduled day action: repay | topup | withdraw (NULL = none)"),
     Column("action_block", "UBIGINT", "block of that action"),
     Column("action_amount_raw", "HUGEINT", "its amount, raw units of the asset"),
     Column("dai_supplied_raw", "HUGEINT", "DAI supplied at opening, 18 decimals (the liquidity "
            "provider's; NULL: not recorded, a sample built before this column, whose writer "
            "dropped it)")),
    filled_by="ingest.sample", sort_key=("user",)))
