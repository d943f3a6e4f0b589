"""Domain pre-training on your own unlabeled text, so an offline user gets a base model that is not random.

    accelerate launch recipes/pretrain_mlm.py --text-from ../shared/data/livedoor/ldcc-20140209.tar.gz \\
        --output-dir runs/livedoor-mlm --max-minutes 8
    python recipes/pretrain_mlm.py --text-from ../shared/data/livedoor/ldcc-20140209.tar.gz --split-seed 1 2 3 \\
        --output-dir runs/livedoor-mlm-123 --max-minutes 6     # one base for livedoor runs of seeds 1, 2 and 3
    accelerate launch recipes/pretrain_mlm.py --text-from notes.txt --causal --output-dir runs/my-gpt
    accelerate launch recipes/lora_headlines.py --model runs/livedoor-mlm          # fine-tune from it

--text-from takes a .txt file (one document per non-empty line), a folder of .txt files (one document each),
or the livedoor archive, of which only the training split's article bodies are used (split as the livedoor
task splits, same --split-seed; with several seeds, only the bodies in the training split of every one). The
learning rate warms up for at most 100 steps and decays to 0 by --max-steps or --max-minutes, whichever comes
first, and pretraining.json records the loss of each tenth of the steps. From scratch, the vocabulary (MeCab
unidic-lite words + WordPiece) is built from the text (with --init-vectors, plus the table's frequent words, their
embeddings starting from its vectors); --base continues a given masked LM (or causal LM with --causal) with its
own tokenizer.
"""

from mikiwame.studies import pretrain_mlm


def main(argv=None):
    return pretrain_mlm.main(__doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
